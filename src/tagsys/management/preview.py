"""Previewing a rule that is not saved: who it would tag, on a warm SparkSession.

The users' lake values (every rule column of every table, one row per user) are built with
the engine's own frame code once per lake snapshot and kept in Spark's cache; the stored
memberships (`user_tags`) are cached until a run starts or ends. A preview then is one
aggregation over the cached frame (plus a join when a tag's membership is compared), under a
time limit: past it, the preview's Spark jobs are cancelled and PreviewTimeout is raised.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from tagsys.errors import DefinitionError, PreviewTimeout
from tagsys.management.checks import rule_problems
from tagsys.rules.model import Group

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from tagsys.lake.catalog import LakeCatalog
    from tagsys.lake.schema import LakeSchema

log = logging.getLogger(__name__)

MAX_SAMPLE = 1000
HELD = "_held"
MATCHED = "_matched"


@dataclass(frozen=True)
class PreviewResult:
    as_of: date
    users: int
    """Users of the lake's population the rule was evaluated on."""
    matched: int
    sample: list[str]
    conditions: list[dict[str, Any]]
    """Per top-level condition (or group) alone: its location and how many users it matches."""
    tag_id: int | None = None
    stored: int | None = None
    """Users holding the tag in `user_tags` now."""
    added: int | None = None
    removed: int | None = None
    seconds: float = 0.0
    cached: bool = False
    """The users' frame was already cached (a warm preview)."""

    def view(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "users": self.users,
            "matched": self.matched,
            "sample": self.sample,
            "conditions": self.conditions,
            "tag_id": self.tag_id,
            "stored": self.stored,
            "added": self.added,
            "removed": self.removed,
            "seconds": round(self.seconds, 3),
            "warm": self.cached,
        }


@dataclass
class _Cached:
    key: Any = None
    frame: DataFrame | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Previewer:
    """One per SparkSession; thread-safe. `store_key` changes when `user_tags` may have."""

    def __init__(
        self,
        spark: Callable[[], SparkSession],
        catalog: LakeCatalog,
        db_url: str,
        conf: Mapping[str, str],
        store_key: Callable[[], Any],
    ) -> None:
        self._spark = spark
        self.catalog = catalog
        self.db_url = db_url
        self.conf = dict(conf)
        self.store_key = store_key
        self._users = _Cached()
        self._members = _Cached()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tagsys-preview")

    def preview(
        self,
        rule: Any,
        as_of: date,
        *,
        tag_id: int | None = None,
        sample: int = 20,
        timeout: float = 30.0,
    ) -> PreviewResult:
        """DefinitionError (every problem, located `rule.conditions[..]`) for a bad rule."""
        schema = self.catalog.schema()
        problems = [
            (where.replace("rules[0]", "rule", 1), what)
            for where, what in rule_problems([rule], schema)
        ]
        if problems:
            raise DefinitionError(
                f"the rule has {len(problems)} problem(s); nothing was computed", problems
            )
        group = Group.model_validate(rule)
        group_id = f"tagsys-preview-{uuid.uuid4().hex}"
        started = time.perf_counter()
        future = self._pool.submit(
            self._compute, group_id, group, schema, as_of, tag_id, min(sample, MAX_SAMPLE)
        )
        try:
            result: PreviewResult = future.result(timeout=timeout)
        except FutureTimeout:
            self._spark().sparkContext.cancelJobGroup(group_id)
            raise PreviewTimeout(
                f"the preview took longer than its limit of {timeout:g} s and was stopped "
                "(its Spark jobs were cancelled). The first preview after new lake data "
                "builds the users' frame: retry in a minute, or raise timeout_seconds"
            ) from None
        return _timed(result, time.perf_counter() - started)

    def _compute(
        self,
        group_id: str,
        group: Group,
        schema: LakeSchema,
        as_of: date,
        tag_id: int | None,
        sample: int,
    ) -> PreviewResult:
        from pyspark.sql import functions as F

        from tagsys.engine import frames
        from tagsys.rules.compiler import compile_rule
        from tagsys.spark import run_conf

        spark = self._spark()
        spark.sparkContext.setJobGroup(group_id, "tagsys rule preview", interruptOnCancel=True)
        with run_conf(spark, self.conf):
            frame, warm = self._user_frame(spark, schema, as_of)
            whole = compile_rule(group, schema, as_of)
            parts = [
                compile_rule(Group(logic="AND", conditions=[node]), schema, as_of)
                for node in group.conditions
            ]
            counts = frame.agg(
                F.count("*"), F.count_if(whole), *[F.count_if(p) for p in parts]
            ).first()
            assert counts is not None
            ids = frame.where(whole).select(frames.USER).orderBy(frames.USER).limit(sample)
            membership = self._compare(spark, frame, whole, tag_id) if tag_id else {}
            return PreviewResult(
                as_of=as_of,
                users=int(counts[0]),
                matched=int(counts[1]),
                sample=[row[0] for row in ids.collect()],
                conditions=[
                    {"location": f"rule.conditions[{i}]", "matched": int(counts[2 + i])}
                    for i in range(len(parts))
                ],
                tag_id=tag_id,
                cached=warm,
                **membership,
            )

    def _user_frame(
        self, spark: SparkSession, schema: LakeSchema, as_of: date
    ) -> tuple[DataFrame, bool]:
        """Every rule column of every table, one row per user: the run's own frame code."""
        from tagsys.engine import frames
        from tagsys.lake.reader import open_snapshot, select_snapshot

        tables = sorted(self.catalog.tables)
        snapshots = {t: self.catalog.snapshot_for(t, as_of) for t in tables}
        key = (tuple(snapshots.items()), schema)
        with self._users.lock:
            if self._users.key == key and self._users.frame is not None:
                return self._users.frame, True
            inputs = [
                frames.TableInput(
                    table,
                    select_snapshot(
                        open_snapshot(spark, snapshot), snapshot, sorted(schema.tables[table])
                    ),
                )
                for table, snapshot in snapshots.items()
            ]
            frame = frames.user_frame(spark, inputs, None).persist()
            return self._replace(self._users, key, frame), False

    def _compare(
        self, spark: SparkSession, frame: DataFrame, whole: Column, tag_id: int
    ) -> dict[str, int]:
        """Users the rule would add to and remove from the tag's stored membership (a
        stored member missing from the lake would be removed, as a run removes it)."""
        from pyspark.sql import functions as F

        from tagsys.engine import frames

        members = self._member_frame(spark)
        held = members.where(F.array_contains("ids", tag_id)).select(
            frames.USER, F.lit(True).alias(HELD)
        )
        joined = frame.select(frames.USER, whole.alias(MATCHED)).join(held, frames.USER, "full")
        matched = F.coalesce(F.col(MATCHED), F.lit(False))
        row = joined.agg(
            F.count_if(F.col(HELD).isNotNull()),
            F.count_if(matched & F.col(HELD).isNull()),
            F.count_if(~matched & F.col(HELD).isNotNull()),
        ).first()
        assert row is not None
        return {"stored": int(row[0]), "added": int(row[1]), "removed": int(row[2])}

    def _member_frame(self, spark: SparkSession) -> DataFrame:
        from pyspark.sql import functions as F

        from tagsys.engine import frames
        from tagsys.engine.io import existing_frame

        key = self.store_key()
        with self._members.lock:
            if self._members.key == key and self._members.frame is not None:
                return self._members.frame
            partitions = spark.sparkContext.defaultParallelism
            stored = existing_frame(spark, self.db_url, None, partitions)
            frame = stored.select(
                frames.USER, F.from_json(frames.OLD_IDS_JSON, "array<int>").alias("ids")
            ).persist()
            return self._replace(self._members, key, frame)

    @staticmethod
    def _replace(slot: _Cached, key: Any, frame: DataFrame) -> DataFrame:
        """Materialise `frame` (cancellable: nothing is kept if it is stopped), then let it
        take the slot's place."""
        try:
            frame.count()
        except BaseException:
            frame.unpersist()
            raise
        if slot.frame is not None:
            slot.frame.unpersist()
        slot.key, slot.frame = key, frame
        return frame

    def close(self) -> None:
        for slot in (self._users, self._members):
            if slot.frame is not None:
                slot.frame.unpersist()
                slot.frame = None
        self._pool.shutdown(wait=False, cancel_futures=True)


def _timed(result: PreviewResult, seconds: float) -> PreviewResult:
    from dataclasses import replace

    return replace(result, seconds=seconds)
