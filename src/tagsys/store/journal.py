"""The change journal (`user_tags_journal`): reads for history and rollback, and pruning.

Entries are written by the write path itself (`tagsys.store.writer`, and a rollback's batches),
in the same transaction as the row they describe; nothing here writes user_tags.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tagsys.errors import StoreError
from tagsys.store.adapters import Retry, StoreAdapter, as_text, chunks
from tagsys.store.audiences import lock_state
from tagsys.store.db import Bind, engine_adapter, transaction
from tagsys.store.runs import RunRecord, read_runs
from tagsys.store.schema import tag_runs, user_tags, user_tags_journal
from tagsys.tagsets import parse_ids

J = user_tags_journal
log = logging.getLogger(__name__)
PRUNE_LOCK_WAIT_SECONDS = 900.0
"""How long a prune waits for the audience index's maintenance (beyond one lock wait)."""


@dataclass(frozen=True)
class JournalEntry:
    """One row a run wrote: its before image (ids None: no row) and after content (ids None:
    the row was deleted; details as a digest), as stored JSON text."""

    run_id: str
    user_id: str
    written_at: datetime
    before_ids: str | None
    before_details: str | None
    before_updated: datetime | None
    after_ids: str | None
    after_details_md5: str | None
    """MD5 of the after tag_details text (canonical JSON, as the writers store it)."""
    entered: tuple[int, ...]
    exited: tuple[int, ...]


def _text(column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    return sa.type_coerce(column, sa.Text)


_ENTRY_COLUMNS = (
    J.c.run_id,
    J.c.user_id,
    J.c.written_at,
    _text(J.c.before_ids),
    _text(J.c.before_details),
    J.c.before_updated,
    _text(J.c.after_ids),
    J.c.after_details_md5,
    _text(J.c.entered),
    _text(J.c.exited),
)


def _entry(row: sa.Row[Any]) -> JournalEntry:
    values = list(row[:10])
    values[8] = tuple(parse_ids(values[8]))
    values[9] = tuple(parse_ids(values[9]))
    return JournalEntry(*values)


def run_entries(
    *, bind: Bind, run_id: str, after_user: str | None, limit: int
) -> list[JournalEntry]:
    """A run's entries in user id order (the lock order), from after `after_user`."""
    query = sa.select(*_ENTRY_COLUMNS).where(J.c.run_id == run_id)
    if after_user is not None:
        query = query.where(J.c.user_id > after_user)
    query = query.order_by(J.c.user_id).limit(limit)
    with transaction(bind) as conn:
        return [_entry(row) for row in conn.execute(query)]


def count_entries(*, bind: Bind, run_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(J).where(J.c.run_id == run_id)
    with transaction(bind) as conn:
        return int(conn.execute(query).scalar() or 0)


def journaled_users(
    cursor: Any, adapter: StoreAdapter, run_id: str, user_ids: list[str]
) -> dict[str, str]:
    """Which of `user_ids` already have an entry of `run_id` (inside the caller's transaction),
    each with what that write did: `inserted` (the row was absent before) or `updated`."""
    found: dict[str, str] = {}
    for some in chunks(user_ids, adapter.MAX_IN_PARAMS - 1):  # the database's variable limit
        sql = (
            "SELECT user_id, before_ids IS NULL FROM user_tags_journal"
            f" WHERE run_id = {adapter.placeholders(1)}"
            f" AND user_id IN ({adapter.placeholders(len(some))})"
        )
        cursor.execute(sql, [run_id, *some])
        for user_id, absent in cursor.fetchall():
            found[str(as_text(user_id))] = "inserted" if absent else "updated"
    return found


def user_entries(
    *, bind: Bind, user_id: str, before: tuple[datetime, str] | None, limit: int
) -> list[tuple[JournalEntry, str | None]]:
    """A user's entries, newest first, each with its run's mode; keyset page below `before`
    (written_at, run_id)."""
    query = (
        sa.select(*_ENTRY_COLUMNS, tag_runs.c.mode)
        .select_from(J.outerjoin(tag_runs, tag_runs.c.run_id == J.c.run_id))
        .where(J.c.user_id == user_id)
    )
    if before is not None:
        at, run_id = before
        query = query.where(
            sa.or_(J.c.written_at < at, sa.and_(J.c.written_at == at, J.c.run_id < run_id))
        )
    query = query.order_by(J.c.written_at.desc(), J.c.run_id.desc()).limit(limit)
    with transaction(bind) as conn:
        return [(_entry(row), row[10]) for row in conn.execute(query)]


def journal_runs(*, bind: Bind, before: tuple[datetime, str] | None, limit: int) -> list[RunRecord]:
    """Runs that may have written rows since the journal exists (journal on, off or pruned;
    dry runs excluded: they write 0, or, recorded before 2026-12-05, NULL as completed runs;
    a journal-off run still going, or that stopped before its rows were counted, may have),
    newest first; keyset page below `before` (started_at, run_id)."""
    uncounted = sa.and_(tag_runs.c.rows_written.is_(None), tag_runs.c.status != "completed")
    query = sa.select(tag_runs).where(
        tag_runs.c.journal.is_not(None),
        sa.or_(tag_runs.c.journal != "off", tag_runs.c.rows_written > 0, uncounted),
    )
    if before is not None:
        at, run_id = before
        query = query.where(
            sa.or_(
                tag_runs.c.started_at < at,
                sa.and_(tag_runs.c.started_at == at, tag_runs.c.run_id < run_id),
            )
        )
    query = query.order_by(tag_runs.c.started_at.desc(), tag_runs.c.run_id.desc()).limit(limit)
    with transaction(bind) as conn:
        return read_runs(conn, query)


def tag_event_counts(*, bind: Bind, tag_id: int, run_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Per run: how many users entered and exited tag `tag_id` (runs without such entries are
    absent)."""
    if not run_ids:
        return {}
    adapter = engine_adapter(bind.engine)
    entered = adapter.JSON_HAS_SQL.format(column="entered")
    exited = adapter.JSON_HAS_SQL.format(column="exited")
    sql = sa.text(
        f"SELECT run_id, SUM(CASE WHEN {entered} THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN {exited} THEN 1 ELSE 0 END)"
        " FROM user_tags_journal WHERE run_id IN :runs GROUP BY run_id"
    ).bindparams(sa.bindparam("runs", expanding=True))
    with transaction(bind) as conn:
        rows = conn.execute(sql, {"tag": str(tag_id), "runs": run_ids}).all()
    return {str(row[0]): (int(row[1] or 0), int(row[2] or 0)) for row in rows}


def tag_member_count(*, bind: Bind, tag_id: int) -> int:
    """Users whose current tag_ids hold `tag_id`."""
    has = engine_adapter(bind.engine).HAS_TAG_SQL
    sql = sa.text(f"SELECT COUNT(*) FROM {user_tags.name} WHERE {has}")
    with transaction(bind) as conn:
        return int(conn.execute(sql, {"tag_id": tag_id}).scalar() or 0)


def journaled_runs_before(*, bind: Bind, started_before: datetime) -> list[RunRecord]:
    """Runs that started before the cut-off and hold journal entries: those with a journal,
    and those marked pruned by a prune that stopped before deleting all of them."""
    leftover = sa.exists().where(J.c.run_id == tag_runs.c.run_id)
    query = sa.select(tag_runs).where(
        tag_runs.c.started_at < started_before,
        sa.or_(tag_runs.c.journal == "on", sa.and_(tag_runs.c.journal == "pruned", leftover)),
    )
    with transaction(bind) as conn:
        return read_runs(conn, query)


def prune_run(*, bind: sa.Engine, run_id: str, chunk: int = 5000) -> int:
    """Mark one run's journal pruned, then delete its entries (a chunk per transaction).
    Marked first, a run is never rolled back from part of its journal: a rollback that has
    begun stops at its next page (`tagsys.history.rollback`), and a prune that stops midway
    leaves the rest to the next prune. The mark waits for the audience index's lock: an index
    maintenance that read the run as journaled assigns ids from its entries before they go.
    Returns the entries deleted."""
    _mark_pruned(bind, run_id)
    deleted = 0
    while True:
        with transaction(bind) as conn:
            users = [
                row[0]
                for row in conn.execute(
                    sa.select(J.c.user_id).where(J.c.run_id == run_id).limit(chunk)
                )
            ]
            if not users:
                return deleted
            conn.execute(sa.delete(J).where(J.c.run_id == run_id, J.c.user_id.in_(users)))
            deleted += len(users)


def _mark_pruned(engine: sa.Engine, run_id: str) -> None:
    """Mark the run pruned under the index's lock, waiting out a maintenance that holds it
    longer than one lock wait (a rebuild of millions of rows)."""
    adapter = engine_adapter(engine)
    deadline = time.monotonic() + PRUNE_LOCK_WAIT_SECONDS
    pause = 0.5  # a deadlock victim fails at once: do not spin
    while True:
        try:
            with transaction(engine) as conn:
                lock_state(conn)
                stmt = sa.update(tag_runs).where(tag_runs.c.run_id == run_id)
                conn.execute(stmt.values(journal="pruned"))
            return
        except StoreError as exc:
            cause = getattr(exc.__cause__, "orig", None)
            waited = cause is not None and adapter.retry_kind(cause) is Retry.ROLLBACK
            if not waited or time.monotonic() > deadline:
                raise
            log.info("waiting for the audience index's maintenance to prune run %s", run_id)
            time.sleep(pause)
            pause = min(pause * 2, 10.0)
