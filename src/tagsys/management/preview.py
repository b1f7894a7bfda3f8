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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from tagsys.errors import DefinitionError, PreviewTimeout
from tagsys.management.checks import rule_problems
from tagsys.rules.model import Group
from tagsys.rules.validate import parse_rule

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from tagsys.lake.catalog import LakeCatalog
    from tagsys.lake.schema import LakeSchema

log = logging.getLogger(__name__)

MAX_SAMPLE = 1000
HELD = "_held"


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


class FrameCache:
    """One cached frame and the key it was built for. A build runs in the builder's own
    thread and Spark job group: a preview that times out while waiting for it does not stop
    it, so the next preview finds the frame ready."""

    def __init__(
        self, builder: ThreadPoolExecutor, start: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._builder = builder
        self._start = start
        self._lock = threading.Lock()
        self.key: Any = None
        self.frame: DataFrame | None = None
        self._pending: tuple[Any, Future[DataFrame]] | None = None

    @property
    def building(self) -> bool:
        return self._pending is not None

    def get(self, key: Any, build: Callable[[], DataFrame]) -> tuple[DataFrame, bool]:
        """The frame for `key` and whether it was cached already (built now if not)."""
        with self._lock:
            if self.key == key and self.frame is not None:
                return self.frame, True
            if self._pending is None or self._pending[0] != key:
                self._pending = (key, self._builder.submit(self._build, key, build))
            future = self._pending[1]
        return future.result(), False

    def _build(self, key: Any, build: Callable[[], DataFrame]) -> DataFrame:
        try:
            with self._start():
                frame = build().persist()
                try:
                    frame.count()
                except BaseException:
                    frame.unpersist()
                    raise
        finally:
            with self._lock:
                self._pending = None
        with self._lock:
            if self.frame is not None:
                self.frame.unpersist()
            self.key, self.frame = key, frame
        return frame

    def clear(self) -> None:
        with self._lock:
            if self.frame is not None:
                self.frame.unpersist()
            self.key, self.frame = None, None


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
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tagsys-preview")
        self._builder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tagsys-preview-cache")
        self._users = FrameCache(self._builder, self._building)
        self._members = FrameCache(self._builder, self._building)

    @contextmanager
    def _building(self) -> Iterator[None]:
        from tagsys.spark import run_conf

        spark = self._spark()
        spark.sparkContext.setJobGroup(
            f"tagsys-preview-cache-{uuid.uuid4().hex}",
            "tagsys preview cache",
            interruptOnCancel=True,
        )
        with run_conf(spark, self.conf):
            yield

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
        group = parse_rule(rule, schema)  # valid: a JSON text or a mapping, as runs read it
        self._spark()  # resolved in the caller's thread, where its active session is
        group_id = f"tagsys-preview-{uuid.uuid4().hex}"
        started = time.perf_counter()
        future = self._pool.submit(
            self._compute, group_id, group, schema, as_of, tag_id, min(sample, MAX_SAMPLE)
        )
        try:
            result: PreviewResult = future.result(timeout=timeout)
        except FutureTimeout:
            self._spark().sparkContext.cancelJobGroup(group_id)
            raise PreviewTimeout(self._timeout_message(timeout)) from None
        return _timed(result, time.perf_counter() - started)

    def _timeout_message(self, timeout: float) -> str:
        message = (
            f"the preview took longer than its limit of {timeout:g} s and was stopped (its "
            "Spark jobs were cancelled)"
        )
        if self._users.building or self._members.building:
            return (
                f"{message}. The lake's users (or the stored tags) are being read into the "
                "preview cache in the background, once per lake snapshot or run: retry in a "
                "minute"
            )
        return f"{message}: simplify the rule, or raise timeout_seconds"

    def _compute(
        self,
        group_id: str,
        group: Group,
        schema: LakeSchema,
        as_of: date,
        tag_id: int | None,
        sample: int,
    ) -> PreviewResult:

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
            source = frame if tag_id is None else self._with_holders(spark, frame, tag_id)
            counts = source.agg(*_counts(whole, parts, compare=tag_id is not None)).first()
            assert counts is not None
            # Any `sample` matching users: the first partitions that have them are enough
            # (ordering all matches would cost a second full pass).
            ids = frame.where(whole).select(frames.USER).limit(sample)
            tail = [int(c) for c in counts[2 + len(parts) :]]
            return PreviewResult(
                as_of=as_of,
                users=int(counts[0]),
                matched=int(counts[1]),
                sample=sorted(row[0] for row in ids.collect()),
                conditions=[
                    {"location": f"rule.conditions[{i}]", "matched": int(counts[2 + i])}
                    for i in range(len(parts))
                ],
                tag_id=tag_id,
                cached=warm,
                **dict(zip(("stored", "added", "removed"), tail, strict=False)),
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

        def build() -> DataFrame:
            inputs = [
                frames.TableInput(
                    table,
                    select_snapshot(
                        open_snapshot(spark, snapshot), snapshot, sorted(schema.tables[table])
                    ),
                )
                for table, snapshot in snapshots.items()
            ]
            # Grouped by user id, so hash-partitioned by it; sorted within the partitions, the
            # join with stored members (partitioned alike) needs no shuffle and no sort.
            return frames.user_frame(spark, inputs, None).sortWithinPartitions(frames.USER)

        return self._users.get(key, build)

    def _with_holders(self, spark: SparkSession, frame: DataFrame, tag_id: int) -> DataFrame:
        """The users' frame joined with the tag's stored holders (`_held`); a holder who is
        not in the lake has a row too (a run would remove the tag from it)."""
        from pyspark.sql import functions as F

        from tagsys.engine import frames

        members = self._member_frame(spark, frame.rdd.getNumPartitions())
        held = members.where(F.array_contains("ids", tag_id)).select(
            frames.USER, F.lit(True).alias(HELD)
        )
        return frame.join(held, frames.USER, "full")

    def _member_frame(self, spark: SparkSession, partitions: int) -> DataFrame:
        from pyspark.sql import functions as F

        from tagsys.engine import frames
        from tagsys.engine.io import existing_frame

        def build() -> DataFrame:
            readers = spark.sparkContext.defaultParallelism
            stored = existing_frame(spark, self.db_url, None, readers)
            return (
                stored.select(
                    frames.USER, F.from_json(frames.OLD_IDS_JSON, "array<int>").alias("ids")
                )
                .repartition(partitions, frames.USER)
                .sortWithinPartitions(frames.USER)
            )

        return self._members.get((self.store_key(), partitions), build)[0]

    def close(self) -> None:
        self._users.clear()
        self._members.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._builder.shutdown(wait=False, cancel_futures=True)


def _counts(whole: Column, parts: list[Column], compare: bool) -> list[Column]:
    """Users, matches, matches per top-level condition, and with `compare` the tag's stored
    holders and the users a run would add to and remove from it: one pass."""
    from pyspark.sql import functions as F

    from tagsys.engine import frames

    in_lake = F.coalesce(F.col(frames.IN_LAKE), F.lit(False))
    matched = in_lake & whole
    counts = [F.count_if(in_lake), F.count_if(matched), *[F.count_if(in_lake & p) for p in parts]]
    if compare:
        held = F.col(HELD).isNotNull()
        counts += [F.count_if(held), F.count_if(matched & ~held), F.count_if(~matched & held)]
    return counts


def _timed(result: PreviewResult, seconds: float) -> PreviewResult:
    from dataclasses import replace

    return replace(result, seconds=seconds)
