"""The audience index's tables: dense user ids, the published bitmaps (as bytes: the store
knows nothing of their format), the runs the index holds, saved audiences and their sizes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tagsys.store.db import Bind, engine_adapter, transaction
from tagsys.store.runs import RunRecord, record_of
from tagsys.store.schema import (
    audience_bitmaps,
    audience_index,
    audience_index_runs,
    audience_sizes,
    audiences,
    tag_definition,
    tag_runs,
    user_index,
    user_tags,
    user_tags_journal,
)

UNIVERSE = 0
"""The bitmap row of every user with a user_tags row (what `not` subtracts from)."""
IN_CHUNK = 5000


@dataclass(frozen=True)
class IndexState:
    generation: int
    run_id: str | None
    published_at: datetime | None
    rebuilt_at: datetime | None

    @property
    def built(self) -> bool:
        return self.rebuilt_at is not None


@dataclass(frozen=True)
class TagRef:
    tag_id: int
    name: str
    category: str
    deleted: bool


@dataclass(frozen=True)
class SavedAudience:
    name: str
    expression: Any
    owner: str | None
    description: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SizeRecord:
    generation: int
    run_id: str | None
    size: int
    recorded_at: datetime


def _state(row: sa.Row[Any] | None) -> IndexState:
    if row is None:
        return IndexState(0, None, None, None)
    return IndexState(int(row.generation), row.run_id, row.published_at, row.rebuilt_at)


def read_state(*, bind: Bind) -> IndexState:
    with transaction(bind) as conn:
        return _state(
            conn.execute(sa.select(audience_index).where(audience_index.c.id == 1)).first()
        )


def lock_state(conn: sa.Connection) -> IndexState:
    """Take the index's write lock for this transaction (a row lock on MySQL, the database's
    write lock on SQLite: the no-op update comes first) and return the published state."""
    conn.execute(
        sa.update(audience_index)
        .where(audience_index.c.id == 1)
        .values(generation=audience_index.c.generation)
    )
    return read_state(bind=conn)


def bitmaps_since(conn: sa.Connection, generation: int) -> list[tuple[int, int, bytes]]:
    """(tag id, generation, serialized bitmap) of every tag changed after `generation`."""
    query = sa.select(
        audience_bitmaps.c.tag_id, audience_bitmaps.c.generation, audience_bitmaps.c.bitmap
    ).where(audience_bitmaps.c.generation > generation)
    return [(int(r[0]), int(r[1]), bytes(r[2])) for r in conn.execute(query)]


def member_counts(*, bind: Bind) -> dict[int, int]:
    """Members per tag as the published index holds them (tag 0: users with a row)."""
    query = sa.select(audience_bitmaps.c.tag_id, audience_bitmaps.c.members)
    with transaction(bind) as conn:
        return {int(r[0]): int(r[1]) for r in conn.execute(query)}


def row_counts(*, bind: Bind) -> dict[int, int]:
    """Members per tag counted over user_tags itself (tag 0: rows), one scan."""
    engine = bind.engine if isinstance(bind, sa.Connection) else bind
    sql = sa.text(engine_adapter(engine).TAG_COUNTS_SQL)
    with transaction(bind) as conn:
        counts = {int(r[0]): int(r[1]) for r in conn.execute(sql)}
        counts[UNIVERSE] = int(
            conn.execute(sa.select(sa.func.count()).select_from(user_tags)).scalar() or 0
        )
    return counts


def unapplied_runs(conn: sa.Connection) -> list[RunRecord]:
    """Runs the index has not taken in yet, oldest first (running ones included)."""
    applied = sa.select(audience_index_runs.c.run_id).where(
        audience_index_runs.c.run_id == tag_runs.c.run_id
    )
    query = sa.select(tag_runs).where(~applied.exists()).order_by(tag_runs.c.started_at)
    return [record_of(row) for row in conn.execute(query)]


def assign_ids(conn: sa.Connection, run_ids: Sequence[str] | None) -> None:
    """Give a dense id to every user the runs journaled (None: every user with a row) that
    has none yet. Ids are never reassigned: callers hold the index's write lock."""
    source = user_tags_journal if run_ids is not None else user_tags
    missing = (
        sa.select(source.c.user_id)
        .distinct()
        .select_from(source.outerjoin(user_index, user_index.c.user_id == source.c.user_id))
        .where(user_index.c.idx.is_(None))
    )
    if run_ids is not None:
        missing = missing.where(source.c.run_id.in_(run_ids))
    conn.execute(sa.insert(user_index).from_select(["user_id"], missing))


def journaled_rows(conn: sa.Connection, run_ids: Sequence[str]) -> Iterator[tuple[int, str | None]]:
    """(dense id, current tag_ids JSON or None when the row is gone) of every user the runs
    journaled: their rows as they are now, whatever order the runs wrote in."""
    query = (
        sa.select(user_index.c.idx, user_tags.c.tag_ids)
        .select_from(
            user_tags_journal.join(
                user_index, user_index.c.user_id == user_tags_journal.c.user_id
            ).outerjoin(user_tags, user_tags.c.user_id == user_tags_journal.c.user_id)
        )
        .where(user_tags_journal.c.run_id.in_(run_ids))
    )
    yield from _stream(conn, query)


def all_rows(conn: sa.Connection) -> Iterator[tuple[int, str | None]]:
    """(dense id, tag_ids JSON) of every user_tags row."""
    query = sa.select(user_index.c.idx, user_tags.c.tag_ids).select_from(
        user_tags.join(user_index, user_index.c.user_id == user_tags.c.user_id)
    )
    yield from _stream(conn, query)


def _stream(conn: sa.Connection, query: sa.Select[Any]) -> Iterator[tuple[int, str | None]]:
    result = conn.execution_options(stream_results=True, max_row_buffer=20_000).execute(query)
    for row in result:
        tag_ids = row[1]
        if tag_ids is not None and not isinstance(tag_ids, str):
            tag_ids = json.dumps(tag_ids)
        yield int(row[0]), tag_ids


def publish(
    conn: sa.Connection,
    *,
    state: IndexState,
    bitmaps: dict[int, tuple[int, bytes]],
    runs: Iterable[str],
    run_id: str | None,
    rebuilt: bool,
    now: datetime,
) -> IndexState:
    """Replace the changed tags' rows and move the published generation on, in the caller's
    transaction (under `lock_state`): readers see all of it or none of it."""
    generation = state.generation + 1
    if bitmaps:
        conn.execute(
            sa.delete(audience_bitmaps).where(audience_bitmaps.c.tag_id.in_(list(bitmaps)))
        )
        conn.execute(
            sa.insert(audience_bitmaps),
            [
                {"tag_id": t, "generation": generation, "members": m, "bitmap": b}
                for t, (m, b) in bitmaps.items()
            ],
        )
    run_list = sorted(set(runs))
    for start in range(0, len(run_list), IN_CHUNK):
        conn.execute(
            sa.insert(audience_index_runs),
            [{"run_id": r, "generation": generation} for r in run_list[start : start + IN_CHUNK]],
        )
    values: dict[str, Any] = {"generation": generation, "run_id": run_id, "published_at": now}
    if rebuilt:
        values["rebuilt_at"] = now
    conn.execute(sa.update(audience_index).where(audience_index.c.id == 1).values(**values))
    return IndexState(generation, run_id, now, now if rebuilt else state.rebuilt_at)


def user_ids(*, bind: Bind, ids: Sequence[int]) -> dict[int, str]:
    """Dense id -> user id."""
    found: dict[int, str] = {}
    with transaction(bind) as conn:
        for start in range(0, len(ids), IN_CHUNK):
            chunk = [int(i) for i in ids[start : start + IN_CHUNK]]
            query = sa.select(user_index.c.idx, user_index.c.user_id).where(
                user_index.c.idx.in_(chunk)
            )
            found.update((int(r[0]), str(r[1])) for r in conn.execute(query))
    return found


def ids_after(conn: sa.Connection, last: int, batch: int) -> Iterator[tuple[list[int], list[str]]]:
    """Every (dense id, user id) with id > `last`, in id order, `batch` rows at a time."""
    query = (
        sa.select(user_index.c.idx, user_index.c.user_id)
        .where(user_index.c.idx > last)
        .order_by(user_index.c.idx)
    )
    result = conn.execution_options(stream_results=True, max_row_buffer=batch).execute(query)
    while rows := result.fetchmany(batch):
        yield [int(r[0]) for r in rows], [r[1] for r in rows]


def tag_refs(*, bind: Bind) -> list[TagRef]:
    query = sa.select(
        tag_definition.c.tag_id,
        tag_definition.c.tag_name,
        tag_definition.c.tag_category,
        tag_definition.c.deleted_at,
    )
    with transaction(bind) as conn:
        return [TagRef(int(r[0]), r[1], r[2], r[3] is not None) for r in conn.execute(query)]


# --- saved audiences -------------------------------------------------------------------------


def _saved(row: sa.Row[Any]) -> SavedAudience:
    expression = row.expression
    if isinstance(expression, str):
        expression = json.loads(expression)
    return SavedAudience(
        row.name, expression, row.owner, row.description, row.created_at, row.updated_at
    )


def get_audience(*, bind: Bind, name: str) -> SavedAudience | None:
    with transaction(bind) as conn:
        row = conn.execute(sa.select(audiences).where(audiences.c.name == name)).first()
    return None if row is None else _saved(row)


def list_audiences(*, bind: Bind) -> list[SavedAudience]:
    with transaction(bind) as conn:
        return [_saved(r) for r in conn.execute(sa.select(audiences).order_by(audiences.c.name))]


def insert_audience(*, bind: Bind, audience: SavedAudience) -> bool:
    """False when the name is taken."""
    with transaction(bind) as conn:
        if conn.execute(
            sa.select(audiences.c.name).where(audiences.c.name == audience.name)
        ).first():
            return False
        conn.execute(sa.insert(audiences).values(**audience.__dict__))
    return True


def update_audience(*, bind: Bind, name: str, values: dict[str, Any]) -> bool:
    with transaction(bind) as conn:
        done = conn.execute(sa.update(audiences).where(audiences.c.name == name).values(**values))
        return bool(done.rowcount)


def delete_audience(*, bind: Bind, name: str) -> bool:
    with transaction(bind) as conn:
        conn.execute(sa.delete(audience_sizes).where(audience_sizes.c.name == name))
        return bool(conn.execute(sa.delete(audiences).where(audiences.c.name == name)).rowcount)


def record_sizes(
    conn: sa.Connection, *, generation: int, run_id: str | None, sizes: dict[str, int]
) -> None:
    now = datetime.now(UTC)
    if sizes:
        conn.execute(
            sa.insert(audience_sizes),
            [
                {
                    "name": n,
                    "generation": generation,
                    "run_id": run_id,
                    "size": s,
                    "recorded_at": now,
                }
                for n, s in sizes.items()
            ],
        )


def size_history(*, bind: Bind, name: str, limit: int) -> list[SizeRecord]:
    query = (
        sa.select(audience_sizes)
        .where(audience_sizes.c.name == name)
        .order_by(audience_sizes.c.generation.desc())
        .limit(limit)
    )
    with transaction(bind) as conn:
        return [
            SizeRecord(int(r.generation), r.run_id, int(r.size), r.recorded_at)
            for r in conn.execute(query)
        ]
