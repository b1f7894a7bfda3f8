"""Restoring rows from the journal: the write path of a rollback, one locked batch at a time.

For each entry of the rolled-back run R: a row whose current content is R's after content gets
R's before image back (deleted when R created it); a row already as before is left alone; any
other row was changed after R and is a conflict, left alone too. Every row restored gets an
entry in the rollback's own journal, in the same transaction, so a rollback can be rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tagsys.store.adapters import StoreAdapter, chunks, text_md5
from tagsys.store.journal import JournalEntry, journaled_users
from tagsys.store.writer import (
    StoredRow,
    WriteRequest,
    _engine,
    _lock_existing,
    _parse_existing,
    _with_retries,
    check_fence,
    journal_entry,
)
from tagsys.tagsets import TagScope, details_json, ids_json, parse_details, parse_ids

Content = tuple[list[int], dict[int, dict[str, Any]] | None] | None
"""A row's tag_ids and tag_details as values (None: no row)."""
Digest = tuple[list[int], str | None] | None
"""A row's tag_ids and the MD5 of its canonical tag_details text (None: no row)."""


@dataclass
class RestoreCounts:
    restored: int = 0
    """Rows given their before content back."""
    recreated: int = 0
    """Rows R had deleted (R was a rollback), inserted again."""
    deleted: int = 0
    """Rows R had created, removed."""
    already: int = 0
    """Rows already as before R (e.g. restored by an earlier, interrupted rollback)."""
    conflicts: list[str] = field(default_factory=list)
    """Users whose row changed after R: left alone."""

    def __iadd__(self, other: RestoreCounts) -> RestoreCounts:
        self.restored += other.restored
        self.recreated += other.recreated
        self.deleted += other.deleted
        self.already += other.already
        self.conflicts.extend(other.conflicts)
        return self


@dataclass
class _Plan:
    counts: RestoreCounts = field(default_factory=RestoreCounts)
    upserts: list[tuple[object, ...]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    journal: list[tuple[object, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class RestoreRequest:
    db_url: str
    run_id: str
    """The rollback's own run id (its journal entries)."""
    written_at: datetime
    dry_run: bool = False
    journal: bool = True
    max_attempts: int = 8


def restore_batch(request: RestoreRequest, entries: Sequence[JournalEntry]) -> RestoreCounts:
    """Restore one batch of entries (sorted by user id) in one transaction, retried on lock
    conflicts and lost connections. A retry after a commit whose reply was lost finds the
    rollback's own entries and counts those rows as restored."""
    engine = _engine(request.db_url)
    write = WriteRequest(
        db_url=request.db_url,
        scope=TagScope(),
        definitions={},
        written_at=request.written_at,
        dry_run=request.dry_run,
    )

    def attempt(conn: Any) -> RestoreCounts:
        adapter = _adapter(engine)
        cursor = conn.cursor()
        try:
            if not request.dry_run:
                cursor.execute(adapter.BEGIN_WRITE_SQL)
            users = [entry.user_id for entry in entries]
            current = _lock_existing(cursor, adapter, users, write, lock=not request.dry_run)
            done = (
                {} if request.dry_run else journaled_users(cursor, adapter, request.run_id, users)
            )
            plan = _plan(entries, current, done, request, adapter)
            if request.dry_run:
                conn.rollback()
                return plan.counts
            _apply(cursor, adapter, plan)
            check_fence(cursor, adapter, request.run_id)
            conn.commit()
            return plan.counts
        finally:
            cursor.close()

    return _with_retries(engine, _adapter(engine), request.max_attempts, attempt)


def _adapter(engine: Any) -> StoreAdapter:
    from tagsys.store.db import engine_adapter

    return engine_adapter(engine)


def _plan(
    entries: Sequence[JournalEntry],
    current: dict[str, StoredRow],
    done: Mapping[str, str],
    request: RestoreRequest,
    adapter: StoreAdapter,
) -> _Plan:
    plan = _Plan()
    stamp = adapter.timestamp_param(request.written_at)
    for entry in entries:
        before = _content(entry.before_ids, entry.before_details)
        after = (
            None if entry.after_ids is None else (_ids(entry.after_ids), entry.after_details_md5)
        )
        if entry.user_id in done:
            _count_restored(plan.counts, before, after)
            continue
        old = current.get(entry.user_id)
        now = _current(entry.user_id, old)
        if _digest(now) == after:
            _count_restored(plan.counts, before, after)
            _restore(plan, entry.user_id, old, now, before, stamp, request)
        elif now == before:
            plan.counts.already += 1
        else:
            plan.counts.conflicts.append(entry.user_id)
    return plan


def _content(ids: str | None, details: str | None) -> Content:
    """A row's content; NULL details (the original system's rows may have them) stay None."""
    if ids is None:
        return None
    return _ids(ids), None if details is None else parse_details(details)


def _ids(text: str) -> list[int]:
    return sorted(set(parse_ids(text)))


def _digest(content: Content) -> Digest:
    """Content as the journal keeps an after image: ids, and the MD5 of the details text."""
    if content is None:
        return None
    return content[0], None if content[1] is None else text_md5(details_json(content[1]))


def _current(user_id: str, old: StoredRow | None) -> Content:
    if old is None:
        return None
    ids, details = _parse_existing(user_id, old)
    return sorted(set(ids)), None if old.tag_details is None else details


def _count_restored(counts: RestoreCounts, before: Content, after: Digest) -> None:
    if before is None:
        counts.deleted += 1
    elif after is None:
        counts.recreated += 1
    else:
        counts.restored += 1


def _restore(
    plan: _Plan,
    user_id: str,
    old: StoredRow | None,
    now: Content,
    before: Content,
    stamp: object,
    request: RestoreRequest,
) -> None:
    ids_text = details_text = None
    if before is None:
        plan.deletes.append(user_id)
    else:
        ids_text = ids_json(before[0])
        details_text = None if before[1] is None else details_json(before[1])
        plan.upserts.append((user_id, ids_text, details_text, stamp, stamp))
    if request.journal:
        old_ids = now[0] if now is not None else []
        row = (user_id, ids_text, details_text)
        plan.journal.append(journal_entry(request.run_id, stamp, old, old_ids, row))


def _apply(cursor: Any, adapter: StoreAdapter, plan: _Plan) -> None:
    if plan.upserts:
        cursor.executemany(adapter.UPSERT_SQL, plan.upserts)
    for chunk in chunks(plan.deletes, adapter.MAX_IN_PARAMS):
        cursor.execute(adapter.DELETE_ROWS_SQL.format(ids=adapter.placeholders(len(chunk))), chunk)
    if plan.journal:
        cursor.executemany(adapter.JOURNAL_UPSERT_SQL, plan.journal)
