"""The write path of a run: merge computed tags into user_tags, batch by batch, safely in parallel.

Called on Spark executors, so it knows nothing of Spark: it gets an iterator of
(user_id, computed tag ids) and opens its own connection from the store URL.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from tagsys.errors import DataError, RunError, StoreError, TagSysError
from tagsys.store.adapters import (
    EXISTING_ROWS_SCHEMA,
    Retry,
    StoreAdapter,
    as_text,
    chunks,
    text_md5,
)
from tagsys.store.db import (
    connection_error,
    create_store_engine,
    describe,
    engine_adapter,
    statement_error,
)
from tagsys.store.journal import journaled_users
from tagsys.tagsets import (
    TagInfo,
    TagScope,
    details_json,
    ids_json,
    merge_tags,
    parse_details,
    parse_ids,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoredRow(NamedTuple):
    """A user_tags row as the writer reads it before merging."""

    tag_ids: str | None
    tag_details: str | None
    ours: str | None = None
    """'inserted' or 'updated' when the row already carries this run's write time: an earlier
    attempt committed it, though its connection died before the reply."""
    updated: object = None
    """updated_time as the driver returned it (the journal's before image keeps it)."""


Existing = dict[str, StoredRow]

NEW_ROWS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("computed", pa.list_(pa.int32())),
        ("tag_ids", pa.string()),
        ("tag_details", pa.string()),
    ]
)
"""Prepared rows of users without one: the text to insert, and the ids to merge on a conflict."""
NEW_ROW_COLUMNS = ["user_id", "tag_ids", "tag_details"]


@dataclass(frozen=True)
class WriteRequest:
    """Everything an executor needs to write its partition (picklable)."""

    db_url: str
    scope: TagScope
    definitions: dict[int, TagInfo]
    written_at: datetime
    """The run's write time (UTC): created_time of new rows, updated_time of changed rows."""
    batch_size: int = 2000
    max_attempts: int = 8
    dry_run: bool = False
    """Decide what would be written (reading without locks), write nothing."""
    run_id: str | None = None
    """The run whose journal gets an entry for every row written, in the same transaction
    (None: no journal)."""
    fence_run: str | None = None
    """The run whose record must still say `running` for a batch to commit (see
    `check_fence`); None, or a run without a record: no such check."""

    @property
    def journal_run(self) -> str | None:
        return None if self.dry_run else self.run_id


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


@dataclass
class BatchPlan:
    rows: list[tuple[object, ...]] = field(default_factory=list)
    counts: WriteCounts = field(default_factory=WriteCounts)
    journal: list[tuple[object, ...]] = field(default_factory=list)


def write_rows(request: WriteRequest, rows: Iterable[tuple[str, Sequence[int]]]) -> WriteCounts:
    """Merge `rows` into user_tags; one transaction per batch of users. Returns what changed."""
    return RowWriter(request).write(rows)


def write_new_rows(request: WriteRequest, rows: Iterable[tuple[str, Sequence[int]]]) -> WriteCounts:
    """Like `write_rows`, for users the caller saw without a row: they are inserted without
    locking reads (whose gap locks made concurrent writers deadlock on a fresh table). A
    user whose row exists after all (a concurrent run) is merged the locked way."""
    prepared, empty = prepare_new_rows(request, rows)
    counts = RowWriter(request).insert_prepared(prepared)
    counts.unchanged += empty
    return counts


def prepare_new_rows(
    request: WriteRequest, rows: Iterable[tuple[str, Sequence[int]]]
) -> tuple[pa.Table, int]:
    """The rows users without one would get (as the engine prepares them in Spark), and how
    many users get none (no tag in scope)."""
    out: dict[str, list[Any]] = {name: [] for name in NEW_ROWS_SCHEMA.names}
    empty = 0
    for user_id, computed in _flatten(_batches(rows, request.batch_size)):
        new_ids, details = merge_tags([], {}, computed, request.scope, request.definitions)
        if not new_ids:
            empty += 1
            continue
        row = (user_id, computed, ids_json(new_ids), details_json(details))
        for key, value in zip(out, row, strict=True):
            out[key].append(value)
    return pa.table(out, schema=NEW_ROWS_SCHEMA), empty


def write_partition(request: WriteRequest, batches: Iterable[pa.RecordBatch]) -> WriteCounts:
    """One Spark partition of candidates: `user_id`, `computed` ids, and for users the engine
    saw without a row their prepared `tag_ids`/`tag_details` text (null for the others).

    Prepared rows are bulk-inserted without locking reads (a row that appeared meanwhile is
    merged the locked way); the others are merged under row locks, in sorted batches.
    Both are flushed as they accumulate: a partition is never held whole in memory.
    """
    writer = RowWriter(request)
    total = WriteCounts()
    fresh: list[pa.RecordBatch] = []
    fresh_rows = 0
    existing: list[tuple[str, list[int]]] = []
    for batch in batches:
        prepared = pc.and_(
            batch.column("tag_ids").is_valid(), batch.column("tag_details").is_valid()
        )
        fresh.append(batch.filter(prepared).select(NEW_ROWS_SCHEMA.names))
        fresh_rows += fresh[-1].num_rows
        others = batch.filter(pc.invert(prepared))
        existing.extend(
            zip(
                others.column("user_id").to_pylist(),
                others.column("computed").to_pylist(),
                strict=True,
            )
        )
        if fresh_rows >= writer.adapter.BULK_CHUNK_ROWS:
            total += writer.insert_prepared(pa.Table.from_batches(fresh))
            fresh, fresh_rows = [], 0
        if len(existing) >= request.batch_size:
            total += writer.write(existing)
            existing = []
    total += writer.write(existing)
    if fresh_rows:
        total += writer.insert_prepared(pa.Table.from_batches(fresh))
    return total


def _flatten(batches: Iterable[list[T]]) -> Iterator[T]:
    for batch in batches:
        yield from batch


def max_concurrent_writers(db_url: str) -> int | None:
    """How many partitions may write at once (1 for SQLite, None for no limit of ours)."""
    return engine_adapter(_engine(db_url)).MAX_CONCURRENT_WRITERS


class RowWriter:
    def __init__(self, request: WriteRequest, adapter: StoreAdapter | None = None) -> None:
        self.request = request
        self.engine = _engine(request.db_url)
        self.adapter = adapter or engine_adapter(self.engine)
        self._bulk_engine: sa.Engine | None = None

    @property
    def bulk_engine(self) -> sa.Engine:
        """The one engine whose connections may load local files."""
        if self._bulk_engine is None:
            self._bulk_engine = _engine(self.request.db_url, bulk_load=True)
        return self._bulk_engine

    def write(self, rows: Iterable[tuple[str, Sequence[int]]]) -> WriteCounts:
        total = WriteCounts()
        for batch in _batches(rows, self.request.batch_size):
            total += self._locked(batch)
        return total

    def insert_prepared(self, rows: pa.Table) -> WriteCounts:
        """Insert prepared new rows chunk by chunk; merge the users whose row appeared meanwhile."""
        if self.request.dry_run:  # prepared rows are new, non-empty rows by construction
            return WriteCounts(inserted=rows.num_rows)
        total = WriteCounts()
        chunk = self.adapter.BULK_CHUNK_ROWS
        for start in range(0, rows.num_rows, chunk):
            part = rows.slice(start, chunk)
            inserted = _with_retries(
                self.bulk_engine,
                self.adapter,
                self.request.max_attempts,
                functools.partial(self._insert_chunk, rows=part),
            )
            if inserted == part.num_rows:
                total += WriteCounts(inserted=inserted)
                continue
            pairs = zip(
                part.column("user_id").to_pylist(), part.column("computed").to_pylist(), strict=True
            )
            total += self.write(pairs)  # rows this run inserted come back counted as inserted
        return total

    def _insert_chunk(self, conn: Any, rows: pa.Table) -> int:
        """Insert a chunk of new rows. Journaled, a chunk where some user had a row after all
        is rolled back whole (0): its users are merged one by one, each with its entry."""
        stamp = self.adapter.timestamp_param(self.request.written_at)
        run_id = self.request.journal_run
        cursor = conn.cursor()
        try:
            inserted = self.adapter.insert_new_rows(
                cursor, rows.select(NEW_ROW_COLUMNS), stamp, run_id
            )
            if run_id is not None and inserted < rows.num_rows:
                conn.rollback()
                return 0
            check_fence(cursor, self.adapter, self.request.fence_run)
            conn.commit()
            return inserted
        finally:
            cursor.close()

    def _locked(self, batch: list[tuple[str, list[int]]]) -> WriteCounts:
        return _with_retries(
            self.engine, self.adapter, self.request.max_attempts, self._attempt_fn(batch)
        )

    def _attempt_fn(self, batch: list[tuple[str, list[int]]]) -> Callable[[Any], WriteCounts]:
        dry_run = self.request.dry_run

        def attempt(conn: Any) -> WriteCounts:
            cursor = conn.cursor()
            try:
                if not dry_run:
                    cursor.execute(self.adapter.BEGIN_WRITE_SQL)
                users = [uid for uid, _ in batch]
                existing = _lock_existing(
                    cursor, self.adapter, users, self.request, lock=not dry_run
                )
                run_id = None if dry_run else self.request.journal_run
                done = (
                    {} if run_id is None else journaled_users(cursor, self.adapter, run_id, users)
                )
                plan = plan_batch(batch, existing, self.request, self.adapter, done)
                if dry_run:
                    conn.rollback()
                    return plan.counts
                if plan.rows:
                    cursor.executemany(self.adapter.UPSERT_SQL, plan.rows)
                if plan.journal:
                    cursor.executemany(self.adapter.JOURNAL_UPSERT_SQL, plan.journal)
                check_fence(cursor, self.adapter, self.request.fence_run)
                conn.commit()
                return plan.counts
            finally:
                cursor.close()

        return attempt


def check_fence(cursor: Any, adapter: StoreAdapter, run_id: str | None) -> None:
    """Refuse the batch of a run whose record no longer says `running`: another process
    ended it (as abandoned, before rolling it back or taking it into the audience index), or
    it was recorded failed while this writer still ran. Called last before the commit: the
    read holds the record until then, so no batch commits after its run's end was recorded,
    and the run's heartbeat waits only for commits, not for whole batches."""
    if run_id is None:
        return
    cursor.execute(adapter.RUN_FENCE_SQL, [run_id])
    found = cursor.fetchone()
    status = None if found is None else as_text(found[0])
    if status is not None and status != "running":
        raise RunError(
            f"run {run_id} is recorded as {status} (ended by another process, e.g. as "
            "abandoned after its heartbeat stopped): its remaining writes were refused; "
            "run the same request again"
        )


def plan_batch(
    batch: Sequence[tuple[str, list[int]]],
    existing: Existing,
    request: WriteRequest,
    adapter: StoreAdapter,
    done: Mapping[str, str] | None = None,
) -> BatchPlan:
    """The upsert rows of a batch: only users whose content changes, and no empty new rows.

    `done`: users this run wrote already (a retried batch whose commit landed), with what it
    did. They are not written again, even if another run changed them since: the run's one
    journal entry per user keeps the before image of its own write, and the result is that
    of this run followed by the other."""
    stamp = adapter.timestamp_param(request.written_at)
    plan = BatchPlan()
    for user_id, computed in batch:
        if done and user_id in done:
            if done[user_id] == "inserted":
                plan.counts.inserted += 1
            else:
                plan.counts.updated += 1
            continue
        old = existing.get(user_id)
        old_ids, old_details = _parse_existing(user_id, old)
        try:
            new_ids, new_details = merge_tags(
                old_ids, old_details, computed, request.scope, request.definitions
            )
        except ValueError as exc:  # a kept tag's stored detail is not an object
            raise _malformed(user_id, exc) from exc
        # Content, not text: MySQL 8 hands JSON back re-formatted with its own key order.
        if (old is None and not new_ids) or (
            old is not None and (new_ids, new_details) == (sorted(set(old_ids)), old_details)
        ):
            _count_unchanged(plan.counts, old)
            continue
        if old is None:
            plan.counts.inserted += 1
        else:
            plan.counts.updated += 1
        row = (user_id, ids_json(new_ids), details_json(new_details), stamp, stamp)
        plan.rows.append(row)
        if request.journal_run is not None:
            plan.journal.append(journal_entry(request.journal_run, stamp, old, old_ids, row))
    return plan


def journal_entry(
    run_id: str,
    stamp: object,
    old: StoredRow | None,
    old_ids: Sequence[int],
    row: tuple[object, ...],
) -> tuple[object, ...]:
    """The journal values (JOURNAL_COLUMNS) of writing `row` (user_id, tag_ids, tag_details;
    ids None: the row is deleted) over `old`."""
    user_id, new_ids_text = row[0], row[1]
    before, after = (
        set(old_ids),
        set(parse_ids(None if new_ids_text is None else str(new_ids_text))),
    )
    return (
        run_id,
        user_id,
        stamp,
        None if old is None else old.tag_ids,
        None if old is None else old.tag_details,
        None if old is None else old.updated,
        new_ids_text,
        text_md5(None if row[2] is None else str(row[2])),
        ids_json(after - before),
        ids_json(before - after),
    )


def _count_unchanged(counts: WriteCounts, old: StoredRow | None) -> None:
    """A row already as this run wants it: unchanged, unless this run's own earlier attempt
    wrote it (then it counts as what that attempt did)."""
    if old is not None and old.ours == "inserted":
        counts.inserted += 1
    elif old is not None and old.ours == "updated":
        counts.updated += 1
    else:
        counts.unchanged += 1


def _parse_existing(
    user_id: str, old: StoredRow | None
) -> tuple[list[int], dict[int, dict[str, Any]]]:
    if old is None:
        return [], {}
    try:
        return _parse_stored(old.tag_ids, old.tag_details)
    except (ValueError, TypeError, AttributeError) as exc:
        raise _malformed(user_id, exc) from exc


def _malformed(user_id: str, exc: Exception) -> StoreError:
    return StoreError(
        f"user_tags row of user {user_id!r} holds malformed JSON ({exc}): "
        "fix or delete that row, then run again"
    )


@functools.lru_cache(maxsize=4096)
def _parse_stored(
    ids_text: str | None, details_text: str | None
) -> tuple[list[int], dict[int, dict[str, Any]]]:
    """Many users share one tag combination: parse each stored text once. Callers never mutate."""
    return parse_ids(ids_text), parse_details(details_text)


def _batches(
    rows: Iterable[tuple[str, Sequence[int]]], size: int
) -> Iterator[list[tuple[str, list[int]]]]:
    """Batches of distinct users sorted by user_id: the lock order every writer shares."""
    pending: dict[str, set[int]] = {}
    for user_id, tag_ids in rows:
        if user_id is None:
            raise StoreError("a row without a user id reached the user_tags writer")
        key = str(user_id)
        if len(pending) >= size and key not in pending:
            yield _sorted_batch(pending)
            pending = {}
        pending.setdefault(key, set()).update(int(t) for t in tag_ids)
    if pending:
        yield _sorted_batch(pending)


def _sorted_batch(pending: dict[str, set[int]]) -> list[tuple[str, list[int]]]:
    return [(uid, sorted(pending[uid])) for uid in sorted(pending)]


def _lock_existing(
    cursor: Any,
    adapter: StoreAdapter,
    user_ids: list[str],
    request: WriteRequest,
    lock: bool = True,
) -> Existing:
    """The stored rows of `user_ids`, locked for the merge (or only read, with lock=False)."""
    existing: Existing = {}
    stamp = adapter.timestamp_param(request.written_at)
    select = adapter.SELECT_FOR_MERGE_SQL if lock else adapter.SELECT_FOR_READ_SQL
    for chunk in chunks(user_ids, adapter.MAX_IN_PARAMS):
        sql = select.format(ids=adapter.placeholders(len(chunk)))
        cursor.execute(sql, chunk)
        asked = set(chunk)
        for user_id, ids_text, details_text, created, updated in cursor.fetchall():
            if user_id not in asked:
                raise _same_key_error(user_id, chunk)
            ours = None
            if adapter.same_stamp(updated, stamp):
                ours = "inserted" if adapter.same_stamp(created, stamp) else "updated"
            existing[user_id] = StoredRow(as_text(ids_text), as_text(details_text), ours, updated)
    return existing


def _same_key_error(stored: str, asked: list[str]) -> DataError:
    """A row came back for an id that was not asked for: MySQL's and MariaDB's `utf8mb4_bin`
    compares ids padded with spaces, so 'a' and 'a ' are one key and cannot be two rows."""
    twins = [u for u in asked if u.rstrip(" ") == stored.rstrip(" ")] or ["(another id)"]
    return DataError(
        f"user id {twins[0]!r} and the stored user id {stored!r} differ only in trailing "
        "spaces, which the database's collation ignores: they would share one user_tags row. "
        "Nothing of this batch was written; remove trailing spaces from user ids in the lake."
    )


# --- parallel reads of user_tags for the engine -------------------------------------------


def id_bounds(db_url: str) -> tuple[int, int] | None:
    """(min id, max id) of user_tags, or None when it is empty."""
    stats = id_stats(db_url)
    return None if stats is None else (stats[1], stats[2])


def id_stats(db_url: str) -> tuple[int, int, int] | None:
    """(row count, min id, max id) of user_tags, or None when it is empty."""
    engine = _engine(db_url)
    adapter = engine_adapter(engine)

    def query(conn: Any) -> tuple[int, int, int] | None:
        cursor = conn.cursor()
        try:
            cursor.execute(adapter.ID_STATS_SQL)
            count, low, high = cursor.fetchone()
            conn.rollback()
        finally:
            cursor.close()
        return None if low is None else (int(count), int(low), int(high))

    return _with_retries(engine, adapter, 3, query)


def id_buckets(db_url: str, low: int, width: int) -> list[tuple[int, int]]:
    """(bucket, rows) for each non-empty run of `width` ids from `low`, in id order."""
    engine = _engine(db_url)
    adapter = engine_adapter(engine)
    sql = adapter.ID_BUCKETS_SQL.format(low=int(low), width=int(width))

    def query(conn: Any) -> list[tuple[int, int]]:
        cursor = conn.cursor()
        try:
            cursor.execute(sql)
            found = [(int(bucket), int(rows)) for bucket, rows in cursor.fetchall()]
            conn.rollback()
        finally:
            cursor.close()
        return found

    return _with_retries(engine, adapter, 3, query)


def read_existing_partition(
    db_url: str, lo_id: int, hi_id: int, user_ids: list[str] | None = None
) -> pa.RecordBatch:
    """Rows with lo_id <= id <= hi_id (optionally only `user_ids`): user id, tag_ids text and
    the SHA-1 of the tag_details text (what the engine compares; the writer reads the text)."""
    engine = _engine(db_url)
    adapter = engine_adapter(engine)

    def query(conn: Any) -> pa.Table:
        cursor = conn.cursor()
        try:
            found = adapter.read_rows(cursor, lo_id, hi_id, user_ids)
            conn.rollback()
        finally:
            cursor.close()
        return found

    table = _with_retries(engine, adapter, 3, query)
    columns = [column.combine_chunks() for column in table.columns]
    return pa.RecordBatch.from_arrays(columns, schema=EXISTING_ROWS_SCHEMA)


# --- connections and retries ----------------------------------------------------------------

_engines: dict[tuple[str, int, bool], sa.Engine] = {}
_engines_lock = threading.Lock()


def _engine(db_url: str, bulk_load: bool = False) -> sa.Engine:
    """One engine per URL and process (a forked executor must not share its parent's sockets)."""
    key = (db_url, os.getpid(), bulk_load)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = create_store_engine(db_url, bulk_load=bulk_load)
        return _engines[key]


def dispose_engines() -> None:
    """Close this process's cached writer engines (service shutdown, tests)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def _with_retries(
    engine: sa.Engine, adapter: StoreAdapter, attempts: int, fn: Callable[[Any], T]
) -> T:
    """Run `fn(dbapi_connection)` as a whole; retry it on lock conflicts and lost connections."""
    for attempt in range(1, attempts + 1):
        conn = _raw_connection(engine, adapter, attempt, attempts)
        if conn is None:
            continue
        try:
            return fn(conn)
        except Exception as exc:
            kind = adapter.retry_kind(exc)
            _discard(conn, kind)
            if kind is None:
                raise _as_store_error(engine, exc) from exc
            _give_up_or_wait(engine, exc, attempt, attempts)
        finally:
            _close_quietly(conn)
    raise AssertionError("unreachable")  # pragma: no cover


def _raw_connection(engine: sa.Engine, adapter: StoreAdapter, attempt: int, attempts: int) -> Any:
    try:
        return engine.raw_connection()
    except Exception as exc:  # the pool raises the driver's own errors here, unwrapped
        orig: BaseException = (
            exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
        )
        if adapter.retry_kind(orig) is None or attempt == attempts:
            raise connection_error(engine.url, exc) from exc
        _give_up_or_wait(engine, exc, attempt, attempts)
        return None


def _give_up_or_wait(engine: sa.Engine, exc: BaseException, attempt: int, attempts: int) -> None:
    if attempt >= attempts:
        raise StoreError(
            f"the {describe(engine.url)} kept failing after {attempts} attempts ({exc}): "
            "another writer may hold locks for long, or the server is overloaded or restarting"
        ) from exc
    delay = min(2.0, 0.05 * 2 ** (attempt - 1)) * (0.5 + random.random())
    log.warning(
        "store write attempt %d/%d failed (%s); retrying in %.2fs", attempt, attempts, exc, delay
    )
    time.sleep(delay)


def _discard(conn: Any, kind: Retry | None) -> None:
    if kind is Retry.RECONNECT:
        conn.invalidate()
        return
    try:
        conn.rollback()
    except Exception:
        conn.invalidate()


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        log.debug("closing a store connection failed", exc_info=True)


def _as_store_error(engine: sa.Engine, exc: Exception) -> TagSysError:
    if isinstance(exc, TagSysError):  # the product's own (a store error, a data error)
        return exc
    return statement_error(engine.url, exc)
