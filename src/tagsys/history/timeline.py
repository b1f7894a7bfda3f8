"""Timelines from the journal: a user's changes (tags entered and exited, by which run, when)
and a tag's runs (users who entered and exited it, members after each run). Paged, newest
first, with opaque cursors."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tagsys.history import cursors
from tagsys.store import journal
from tagsys.store.db import read_transaction
from tagsys.store.runs import RunRecord
from tagsys.tagsets import parse_ids

MAX_PAGE = 1000


@dataclass(frozen=True)
class UserChange:
    """One write of a user's row by one run."""

    run_id: str
    mode: str | None
    written_at: datetime
    entered: list[int]
    exited: list[int]
    tag_ids: list[int] | None
    """The user's tags after the change (None: the row was removed, by a rollback)."""


@dataclass(frozen=True)
class UserHistoryPage:
    user_id: str
    changes: list[UserChange]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _plain(asdict(self))
        return data


@dataclass(frozen=True)
class TagRunChange:
    """What one run did to one tag. Counts are None for runs whose journal was off or pruned;
    `members` (users holding the tag after the run) is derived from today's members and the
    journal of the runs since, so it is None beyond a run without journal."""

    run_id: str
    mode: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    entered: int | None
    exited: int | None
    members: int | None


@dataclass(frozen=True)
class TagHistoryPage:
    tag_id: int
    runs: list[TagRunChange]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _plain(asdict(self))
        return data


def user_history(
    bind: sa.Engine, user_id: str, cursor: str | None = None, limit: int = 50
) -> UserHistoryPage:
    before = None
    if cursor is not None:
        values = cursors.decode("user", cursor, {"at": (str,), "run": (str,)})
        before = (cursors.as_time(values["at"]), values["run"])
    found = journal.user_entries(bind=bind, user_id=user_id, before=before, limit=limit + 1)
    changes = [
        UserChange(
            run_id=entry.run_id,
            mode=mode,
            written_at=entry.written_at,
            entered=list(entry.entered),
            exited=list(entry.exited),
            tag_ids=None if entry.after_ids is None else parse_ids(entry.after_ids),
        )
        for entry, mode in found[:limit]
    ]
    next_cursor = None
    if len(found) > limit:
        last = changes[-1]
        next_cursor = cursors.encode("user", at=last.written_at, run=last.run_id)
    return UserHistoryPage(user_id, changes, next_cursor)


def tag_history(
    bind: sa.Engine, tag_id: int, cursor: str | None = None, limit: int = 50
) -> TagHistoryPage:
    before, members = None, None
    if cursor is not None:
        fields = {"at": (str,), "run": (str,), "members": (int, type(None))}
        values = cursors.decode("tag", cursor, fields)
        before = (cursors.as_time(values["at"]), values["run"])
        members = values.get("members")
    with read_transaction(bind) as conn:  # members, runs and their counts: one snapshot
        if cursor is None:
            members = journal.tag_member_count(bind=conn, tag_id=tag_id)
        found = journal.journal_runs(bind=conn, before=before, limit=limit + 1)
        page = found[:limit]
        counts = journal.tag_event_counts(
            bind=conn, tag_id=tag_id, run_ids=[r.run_id for r in page if r.journal == "on"]
        )
    runs = []
    for run in page:
        change = _tag_change(run, counts, members)
        members = _members_before(change)
        runs.append(change)
    next_cursor = None
    if len(found) > limit:
        last = page[-1]
        next_cursor = cursors.encode("tag", at=last.started_at, run=last.run_id, members=members)
    return TagHistoryPage(tag_id, runs, next_cursor)


def _tag_change(
    run: RunRecord, counts: dict[str, tuple[int, int]], members: int | None
) -> TagRunChange:
    entered = exited = None
    if run.journal == "on":
        entered, exited = counts.get(run.run_id, (0, 0))
    return TagRunChange(
        run_id=run.run_id,
        mode=run.mode,
        status=run.effective_status(),
        started_at=run.started_at,
        finished_at=run.finished_at,
        entered=entered,
        exited=exited,
        members=members,
    )


def _members_before(change: TagRunChange) -> int | None:
    if change.members is None or change.entered is None or change.exited is None:
        return None
    return change.members - change.entered + change.exited


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
