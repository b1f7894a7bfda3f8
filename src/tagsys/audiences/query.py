"""Answering audiences from the published index: counts, samples, member pages, exports,
and saved audiences. Everything a call returns comes from one generation of the index."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from pyroaring import BitMap

from tagsys.audiences import export as exporter
from tagsys.audiences.expression import Node, operands, parse, tag_ids, to_document
from tagsys.audiences.ids import UserIds
from tagsys.audiences.index import IndexReader, Snapshot
from tagsys.errors import (
    AudienceError,
    ConflictError,
    NotFoundError,
    RunCancelled,
    UsageError,
)
from tagsys.store import audiences as store
from tagsys.store.db import read_transaction, transaction

MAX_SAMPLE = 10_000
MAX_PAGE = 10_000
MAX_MEMBER_ID = 2**32 - 1
"""Dense member ids are 32-bit (roaring bitmaps)."""
EXPORT_CHUNK = 500_000
RESERVED_NAMES = ("count", "sample", "export")
NAME = re.compile(r"^[^/\s][^/]{0,99}$")
T = TypeVar("T")


@dataclass(frozen=True)
class IndexInfo:
    generation: int
    run_id: str | None
    published_at: datetime | None

    @classmethod
    def of(cls, snapshot: Snapshot) -> IndexInfo:
        return cls(snapshot.generation, snapshot.run_id, snapshot.published_at)


@dataclass(frozen=True)
class OperandCount:
    expression: Any
    count: int


@dataclass(frozen=True)
class TagCount:
    tag_id: int
    tag_name: str
    count: int


@dataclass(frozen=True)
class AudienceCount:
    """An expression's size, the size of each of its top-level operands and of each tag."""

    expression: Any
    count: int
    operands: list[OperandCount]
    tags: list[TagCount]
    index: IndexInfo

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MembersPage:
    users: list[str]
    next_cursor: str | None
    count: int
    index: IndexInfo


@dataclass(frozen=True)
class ExportResult:
    path: str
    format: str
    rows: int
    index: IndexInfo


@dataclass(frozen=True)
class AudienceView(store.SavedAudience):
    """A saved audience with its latest recorded size."""

    size: int | None
    sized_at: datetime | None


class Audiences:
    """Audience queries over one store (thread-safe; share one per process)."""

    def __init__(self, engine: sa.Engine, s3_client: Any = None) -> None:
        self.engine = engine
        self.reader = IndexReader(engine)
        self.ids = UserIds(engine)
        self.s3_client = s3_client

    # --- expressions ---------------------------------------------------------------------
    def resolve(self, expression: Any) -> Node:
        return parse(expression, self._tags())

    def _tags(self) -> list[store.TagRef]:
        with read_transaction(self.engine) as conn:
            return store.tag_refs(bind=conn)

    def _user_ids(self, ids: list[int]) -> dict[int, str]:
        with read_transaction(self.engine) as conn:
            return store.user_ids(bind=conn, ids=ids)

    def _evaluate(self, expression: Any) -> tuple[Node, Snapshot, BitMap, dict[int, str]]:
        with read_transaction(self.engine) as conn:
            tags = store.tag_refs(bind=conn)
            snapshot = self.reader.snapshot(conn)
        node = parse(expression, tags)
        if not snapshot.built:
            raise UsageError(
                "the audience index has not been built yet: run a task, or --mode reindex"
            )
        names = {t.tag_id: t.name for t in tags}
        return node, snapshot, snapshot.evaluate(node), names

    def count(self, expression: Any) -> AudienceCount:
        node, snapshot, members, names = self._evaluate(expression)
        return AudienceCount(
            expression=to_document(node),
            count=len(members),
            operands=[
                OperandCount(to_document(o), len(snapshot.evaluate(o))) for o in operands(node)
            ],
            tags=[TagCount(t, names.get(t, ""), len(snapshot.members(t))) for t in tag_ids(node)],
            index=IndexInfo.of(snapshot),
        )

    def sample(self, expression: Any, n: int, seed: int | None = None) -> MembersPage:
        if not 1 <= n <= MAX_SAMPLE:
            raise UsageError(f"sample size {n}: give 1 to {MAX_SAMPLE}")
        _, snapshot, members, _ = self._evaluate(expression)
        ranks = random.Random(seed).sample(range(len(members)), min(n, len(members)))
        ids = [members[r] for r in ranks]
        found = self._user_ids(ids)
        return MembersPage(
            [found[i] for i in ids if i in found], None, len(members), IndexInfo.of(snapshot)
        )

    def members(self, expression: Any, cursor: str | None = None, limit: int = 100) -> MembersPage:
        """Members in a stable order (their dense ids), `limit` per page."""
        if not 1 <= limit <= MAX_PAGE:
            raise UsageError(f"page size {limit}: give 1 to {MAX_PAGE}")
        after = _cursor(cursor)
        _, snapshot, members, _ = self._evaluate(expression)
        start = members.rank(after) if after is not None else 0
        page = list(members[start : start + limit])
        found = self._user_ids(page)
        more = start + limit < len(members)
        return MembersPage(
            [found[i] for i in page if i in found],
            str(page[-1]) if more and page else None,
            len(members),
            IndexInfo.of(snapshot),
        )

    def export(
        self,
        expression: Any,
        path: str,
        fmt: str | None = None,
        stop: threading.Event | None = None,
    ) -> ExportResult:
        """Write the members' ids to `path`. Setting `stop` ends it between chunks with
        RunCancelled, leaving nothing at `path`."""
        chosen = exporter.export_format(path, fmt)
        _, snapshot, members, _ = self._evaluate(expression)
        chunks = _until(stop, self.ids.chunks(members, EXPORT_CHUNK))
        rows = exporter.write(path, chosen, chunks, self.s3_client)
        return ExportResult(path, chosen, rows, IndexInfo.of(snapshot))

    # --- saved audiences -------------------------------------------------------------------
    def save(
        self,
        name: str,
        expression: Any,
        owner: str | None = None,
        description: str | None = None,
    ) -> AudienceView:
        name = _checked_name(name)
        self.resolve(expression)
        now = datetime.now(UTC)
        saved = store.SavedAudience(name, expression, owner, description, now, now)
        if not store.insert_audience(bind=self.engine, audience=saved):
            raise ConflictError(f"an audience named '{name}' exists already", code="duplicate_name")
        return self.get(name)

    def update(
        self,
        name: str,
        expression: Any = None,
        owner: str | None = None,
        description: str | None = None,
    ) -> AudienceView:
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        node = None if expression is None else self.resolve(expression)
        if expression is not None:
            values["expression"] = expression
        if owner is not None:
            values["owner"] = owner
        if description is not None:
            values["description"] = description
        if node is not None and node == self._saved_node(name):
            node = None  # the same audience sent again (the console always sends it)
        with transaction(self.engine) as conn:
            if node is not None:  # one step with publications (they size saved audiences)
                store.lock_state(conn)
                snapshot = self.reader.snapshot(conn)
                size = len(snapshot.evaluate(node)) if snapshot.built else None
                store.restart_sizes(  # sizes before the audience: the order delete takes
                    conn,
                    name=name,
                    generation=snapshot.generation,
                    run_id=snapshot.run_id,
                    size=size,
                )
            if not store.update_audience(bind=conn, name=name, values=values):
                raise NotFoundError(f"no audience named '{name}'")
        return self.get(name)

    def _saved_node(self, name: str) -> Node | None:
        """The saved audience's expression resolved, or None (unknown, or a tag deleted)."""
        saved = store.get_audience(bind=self.engine, name=name)
        try:
            return None if saved is None else self.resolve(saved.expression)
        except AudienceError:
            return None

    def get(self, name: str) -> AudienceView:
        saved = store.get_audience(bind=self.engine, name=name)
        if saved is None:
            raise NotFoundError(f"no audience named '{name}'")
        return self._view(saved)

    def saved(self) -> list[AudienceView]:
        return [self._view(s) for s in store.list_audiences(bind=self.engine)]

    def delete(self, name: str) -> None:
        if not store.delete_audience(bind=self.engine, name=name):
            raise NotFoundError(f"no audience named '{name}'")

    def sizes(self, name: str, limit: int = 100) -> list[store.SizeRecord]:
        self.get(name)
        return store.size_history(bind=self.engine, name=name, limit=limit)

    def expression_of(self, name: str) -> Any:
        return self.get(name).expression

    def _view(self, saved: store.SavedAudience) -> AudienceView:
        latest = store.size_history(bind=self.engine, name=saved.name, limit=1)
        return AudienceView(
            **vars(saved),
            size=latest[0].size if latest else None,
            sized_at=latest[0].recorded_at if latest else None,
        )


def _checked_name(name: str) -> str:
    name = name.strip()
    if not NAME.match(name) or name.lower() in RESERVED_NAMES:
        raise UsageError(
            f"audience name '{name}': 1 to 100 characters, no '/', not one of "
            f"{', '.join(RESERVED_NAMES)}"
        )
    return name


def _cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > MAX_MEMBER_ID:
        raise UsageError(f"cursor '{cursor}': use the next_cursor a previous page returned")
    return int(cursor)


def _until(stop: threading.Event | None, chunks: Iterable[T]) -> Iterator[T]:
    for chunk in chunks:
        if stop is not None and stop.is_set():
            raise RunCancelled("the export was cancelled; nothing was written")
        yield chunk
