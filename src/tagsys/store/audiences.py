"""The audience index's tables: dense user ids, the published bitmaps (as bytes: the store
knows nothing of their format), the runs the index holds, saved audiences and their sizes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

import pyarrow as pa
import sqlalchemy as sa

from tagsys.errors import StoreError
from tagsys.store.adapters import as_text, packed_csv
from tagsys.store.db import Bind, engine_adapter, transaction, unlocked_reads_transaction
from tagsys.store.runs import RunRecord, read_runs
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
    return read_runs(conn, query)


def assign_ids(conn: sa.Connection, run_ids: Sequence[str] | None) -> None:
    """Give a dense id to every user the runs journaled (None: every user with a row) that
    has none yet. Ids are never reassigned: callers hold the index's write lock.

    One statement per run, in user id order: a run journals a user once, so no DISTINCT
    (whose temporary table cost 18 of 25 s at 1M users), and the unique index fills in order."""
    if run_ids is None:
        _insert_missing(conn, user_tags, None)
    for run_id in sorted(set(run_ids or ())):
        _insert_missing(conn, user_tags_journal, run_id)


def assign_ids_ahead(engine: sa.Engine) -> None:
    """Give a dense id to every user with a row, in a short transaction of its own (under the
    index's lock) whose reads lock nothing (READ COMMITTED on MySQL): a rebuild then need not
    run `assign_ids(conn, None)` in its own long transaction, where the INSERT ... SELECT
    would share-lock every user_tags row until the rebuild commits, holding up every run
    writing meanwhile."""
    with unlocked_reads_transaction(engine) as conn:
        lock_state(conn)
        _insert_missing(conn, user_tags, None)


def _insert_missing(conn: sa.Connection, source: sa.Table, run_id: str | None) -> None:
    missing = (
        sa.select(source.c.user_id)
        .select_from(source.outerjoin(user_index, user_index.c.user_id == source.c.user_id))
        .where(user_index.c.idx.is_(None))
        .order_by(source.c.user_id)
    )
    if run_id is not None:
        missing = missing.where(source.c.run_id == run_id)
    conn.execute(sa.insert(user_index).from_select(["user_id"], missing))


MEMBERSHIP_SCHEMA = pa.schema([("idx", pa.int64()), ("tag_ids", pa.string())])
"""A user's dense id and its row's tag_ids JSON text (null: the row is gone)."""
MEMBERSHIP_CHUNK = 200_000
_PACKED_MAX_BYTES = 64 << 20


def membership(conn: sa.Connection, run_ids: Sequence[str] | None) -> Iterator[pa.Table]:
    """(dense id, current tag_ids) of every user_tags row (None), or of every user the runs
    journaled (null tag_ids: the row is gone): rows as they are now, whatever order the runs
    wrote in. Yields chunks of about MEMBERSHIP_CHUNK rows, each one query: ranges of
    user_tags ids, or per run a keyset on the journal's user ids. On MySQL a chunk arrives as
    one packed text (see `_Packed`). Consume it inside `conn`'s transaction."""
    reader = _reader(conn)
    if run_ids is None:
        for span in _id_ranges(conn):
            yield from _row_chunks(reader, *span)
    else:
        for run_id in sorted(set(run_ids)):
            yield from _run_chunks(reader, run_id)


def _reader(conn: sa.Connection) -> _Plain:
    return _Packed(conn) if conn.dialect.name in ("mysql", "mariadb") else _Plain(conn)


def _id_ranges(conn: sa.Connection) -> list[tuple[int, int]]:
    """user_tags id ranges of about MEMBERSHIP_CHUNK rows each, were ids spread evenly."""
    found = conn.execute(
        sa.select(sa.func.count(), sa.func.min(user_tags.c.id), sa.func.max(user_tags.c.id))
    ).one()
    if not found[0]:
        return []
    rows, low, high = int(found[0]), int(found[1]), int(found[2])
    width = -(-(high - low + 1) // -(-rows // MEMBERSHIP_CHUNK))
    return [(lo, min(high, lo + width - 1)) for lo in range(low, high + 1, width)]


def _row_chunks(reader: _Plain, low: int, high: int) -> Iterator[pa.Table]:
    """The rows with ids low..high; halved while too large for one packed text."""
    source = (
        "user_tags t LEFT JOIN user_index u ON u.user_id = t.user_id"
        " WHERE t.id >= :low AND t.id <= :high"
    )
    rows = reader.read(source, {"low": low, "high": high}).rows
    if rows is not None:
        yield rows
        return
    if low == high:
        raise _too_large()
    middle = (low + high) // 2
    yield from _row_chunks(reader, low, middle)
    yield from _row_chunks(reader, middle + 1, high)


def before_images(
    conn: sa.Connection,
    run_id: str,
    *,
    running: Sequence[str] = (),
    taken: str | None = None,
) -> Iterator[pa.Table]:
    """(dense id, tag_ids before the run wrote it) of the users the run journaled (null
    tag_ids: no row before it), in chunks like `membership`. A user whose row, when the run
    wrote it, carried the write time of another of the `running` runs is left out: that run
    wrote it before (its entry's before image is the older one). With `taken`, only the users
    that run journaled too."""
    reader = _reader(conn)
    query = _JournalQuery(columns="a.before_ids AS tag_ids")
    if taken is not None:  # driven by the taken run's entries, usually the fewer
        query = _JournalQuery(
            columns=query.columns,
            entries="user_tags_journal b JOIN user_tags_journal a ON a.user_id = b.user_id",
            where=" AND b.run_id = :taken",
            params={"taken": taken},
            key="b.user_id",
        )
    others = [r for r in running if r != run_id]
    if others:
        names = ", ".join(f":other{i}" for i in range(len(others)))
        later = (
            " AND NOT EXISTS (SELECT 1 FROM user_tags_journal e WHERE e.user_id = a.user_id"
            f" AND e.run_id IN ({names}) AND e.written_at = a.before_updated)"
        )
        params = {**query.params, **{f"other{i}": r for i, r in enumerate(others)}}
        query = replace(query, where=query.where + later, params=params)
    yield from _run_chunks(reader, run_id, query)


@dataclass(frozen=True)
class _JournalQuery:
    """Which of a run's journal entries (`a`) a chunked read covers, and what it reads."""

    columns: str | None = None
    """The membership read's tag_ids column; None: the users' current rows."""
    entries: str = "user_tags_journal a"
    where: str = ""
    params: dict[str, object] = field(default_factory=dict)
    key: str = "a.user_id"
    """The user id column the chunks are ordered and continued by."""


def _run_chunks(
    reader: _Plain, run_id: str, query: _JournalQuery | None = None
) -> Iterator[pa.Table]:
    """The users one run journaled, MEMBERSHIP_CHUNK at a time (the journal's key order),
    with their current tag_ids, or what `query` reads."""
    query = query or _JournalQuery()
    after: object = None
    size = MEMBERSHIP_CHUNK
    selected = f"{query.key} AS k" + (f", {query.columns}" if query.columns else "")
    current = "" if query.columns else " LEFT JOIN user_tags t ON t.user_id = j.k"
    while True:
        keyset = f" AND {query.key} > :after" if after is not None else ""
        source = (
            f"(SELECT {selected} FROM {query.entries} WHERE a.run_id = :run_id{keyset}"
            f"{query.where} ORDER BY {query.key} LIMIT {int(size)}) j"
            f" LEFT JOIN user_index u ON u.user_id = j.k{current}"
        )
        params = {"run_id": run_id, "after": after, **query.params}
        chunk = reader.read(source, params, "j.k")
        if chunk.rows is None:
            if size == 1:
                raise _too_large()
            size = max(1, size // 2)
            continue
        yield chunk.rows
        if chunk.keys < size:
            return
        after = chunk.last


def _too_large() -> StoreError:
    return StoreError(
        "a user_tags row is too large to read for the audience index: raise the server's "
        "max_allowed_packet"
    )


@dataclass(frozen=True)
class _Chunk:
    keys: int
    """Rows the query covered (for the journal: fewer than asked means the last chunk)."""
    last: object
    """The journal's last user id in the chunk."""
    rows: pa.Table | None
    """None: too large for one packed text."""


class _Plain:
    """Rows fetched as they are (SQLite: in process, no round trips to save)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def read(self, source: str, params: dict[str, object], key: str = "NULL") -> _Chunk:
        """The chunk's rows from `source`; `key` orders a keyset (its last value is kept)."""
        found = self.conn.execute(sa.text(f"SELECT {key}, u.idx, tag_ids FROM {source}"), params)
        rows = found.all()
        kept = [r for r in rows if r[1] is not None]  # a row inserted after ids were assigned
        table = pa.table(
            [
                pa.array([int(r[1]) for r in kept], pa.int64()),
                pa.array([as_text(r[2]) for r in kept], pa.string()),
            ],
            schema=MEMBERSHIP_SCHEMA,
        )
        last = max((r[0] for r in rows if r[0] is not None), default=None)
        return _Chunk(len(rows), last, table)


class _Packed(_Plain):
    """A chunk as one CSV text built by the server (`idx,"tag_ids"`, an empty field for a
    gone row), parsed by pyarrow: fetching rows one by one costs PyMySQL ~25 µs each."""

    SQL = (
        "SELECT COUNT(*), MAX({key}), COUNT(u.idx), CAST(GROUP_CONCAT(u.idx, ',',"
        " IFNULL(CONCAT('\"', REPLACE(tag_ids, '\"', '\"\"'), '\"'), '') SEPARATOR '\n')"
        " AS BINARY) FROM {source}"
    )

    def __init__(self, conn: sa.Connection) -> None:
        super().__init__(conn)
        conn.execute(
            sa.text("SET SESSION group_concat_max_len = LEAST(@@max_allowed_packet - 1024, :n)"),
            {"n": _PACKED_MAX_BYTES},
        )
        self.limit = int(conn.execute(sa.text("SELECT @@group_concat_max_len")).scalar() or 0)

    def read(self, source: str, params: dict[str, object], key: str = "NULL") -> _Chunk:
        sql = sa.text(self.SQL.format(source=source, key=key))
        row = self.conn.execute(sql, params).one()
        keys, last, count, packed = int(row[0]), row[1], int(row[2] or 0), row[3]
        if not count:
            return _Chunk(keys, last, MEMBERSHIP_SCHEMA.empty_table())
        text = None if packed is None else bytes(cast(bytes, packed))
        if text is None or len(text) >= self.limit:  # GROUP_CONCAT cut it at the limit
            return _Chunk(keys, last, None)
        table = packed_csv(text, MEMBERSHIP_SCHEMA)
        if table.num_rows != count:
            raise StoreError(
                f"reading the audience index's rows returned {table.num_rows} of {count}: "
                "a user_tags row with a NULL tag_ids?"
            )
        return _Chunk(keys, last, table)


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
    """The JSON column gives the expression decoded: a string is a tag name, never JSON text."""
    return SavedAudience(
        row.name, row.expression, row.owner, row.description, row.created_at, row.updated_at
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
        try:
            conn.execute(sa.insert(audiences).values(**audience.__dict__))
        except sa.exc.IntegrityError:  # the name, taken by a concurrent save
            return False
    return True


def update_audience(*, bind: Bind, name: str, values: dict[str, Any]) -> bool:
    with transaction(bind) as conn:
        done = conn.execute(sa.update(audiences).where(audiences.c.name == name).values(**values))
        return bool(done.rowcount)


def restart_sizes(
    conn: sa.Connection, *, name: str, generation: int, run_id: str | None, size: int | None
) -> None:
    """A saved audience's size history begins again (its expression changed: the sizes of
    the old one say nothing of the new), with its size now when the index is built."""
    conn.execute(sa.delete(audience_sizes).where(audience_sizes.c.name == name))
    if size is not None:
        record_sizes(conn, generation=generation, run_id=run_id, sizes={name: size})


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
