"""The `tag_runs` table: a run's row is written when it starts, beaten while it works and
finished once. A `running` row whose heartbeat stopped is read as `abandoned`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tagsys.errors import StoreError
from tagsys.store.db import (
    Bind,
    database_now,
    newest_first,
    transaction,
    unlocked_reads_transaction,
)
from tagsys.store.schema import RUN_STATUSES, tag_runs

FINAL_RUN_STATUSES = frozenset({"completed", "failed", "cancelled"})
MISSED_BEATS = 3
"""A running row is abandoned after this many heartbeat intervals without a beat."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    mode: str
    as_of: date
    started_at: datetime
    finished_at: datetime | None
    status: str
    summary: dict[str, Any] | None
    host: str | None = None
    pid: int | None = None
    heartbeat_at: datetime | None = None
    heartbeat_seconds: float | None = None
    phase: str | None = None
    error: str | None = None
    rows_written: int | None = None
    journal: str | None = None
    """on, off or pruned (see `tagsys.store.schema.JOURNAL_STATES`); None before the journal."""
    observed_at: datetime | None = None
    """The database's clock when the row was read (not a column): what silence is judged by."""

    def effective_status(self, now: datetime | None = None) -> str:
        """`status`, except `abandoned` for a running row whose heartbeat stopped."""
        if self.status != "running" or not self.heartbeat_seconds:
            return self.status
        last = self.heartbeat_at or self.started_at
        silence = (now or self.observed_at or _now()) - last
        if silence > timedelta(seconds=MISSED_BEATS * self.heartbeat_seconds):
            return "abandoned"
        return self.status


def read_runs(conn: sa.Connection, query: sa.Select[Any]) -> list[RunRecord]:
    """The runs `query` selects from `tag_runs`, each observed at the database's time now."""
    names = {f.name for f in fields(RunRecord)}
    observed_at = database_now(conn)
    return [
        RunRecord(**{k: v for k, v in row._asdict().items() if k in names}, observed_at=observed_at)
        for row in conn.execute(query)
    ]


def insert_run(*, bind: Bind, run: RunRecord) -> None:
    row = {c.name: getattr(run, c.name) for c in tag_runs.columns}
    with transaction(bind) as conn:
        conn.execute(sa.insert(tag_runs).values(**row))


def start_run(
    *,
    bind: Bind,
    run_id: str,
    mode: str,
    as_of: date,
    host: str,
    pid: int,
    heartbeat_seconds: float,
    summary: dict[str, Any] | None = None,
    journal: str | None = None,
) -> RunRecord:
    """The row of a run that starts now (by the database's clock): `running`, with who runs
    it and its first beat."""
    with transaction(bind) as conn:
        now = database_now(conn)
        run = RunRecord(
            run_id=run_id,
            mode=mode,
            as_of=as_of,
            started_at=now,
            finished_at=None,
            status="running",
            summary=summary,
            host=host,
            pid=pid,
            heartbeat_at=now,
            heartbeat_seconds=heartbeat_seconds,
            phase="start",
            journal=journal,
        )
        insert_run(bind=conn, run=run)
    return run


def beat(*, bind: Bind, run_id: str, phase: str | None = None) -> bool:
    """Record that the run is alive (and its phase); False when it is no longer running."""
    values: dict[str, Any] = {} if phase is None else {"phase": phase}
    stmt = sa.update(tag_runs).where(tag_runs.c.run_id == run_id, tag_runs.c.status == "running")
    with transaction(bind) as conn:
        values["heartbeat_at"] = database_now(conn)
        return bool(conn.execute(stmt.values(**values)).rowcount)


def finish_run(
    *,
    bind: Bind,
    run_id: str,
    status: str,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
    rows_written: int | None = None,
) -> None:
    """Move a running run to its final status, once."""
    values = {"status": status, "summary": summary, "error": error, "rows_written": rows_written}
    with transaction(bind) as conn:
        _end(conn, run_id, values)


def finish_counted(
    *,
    engine: sa.Engine,
    run_id: str,
    status: str,
    summary: dict[str, Any] | None,
    error: str | None,
    count_written: Callable[[sa.Connection], int],
) -> None:
    """Move a running run that stopped midway to its final status, with `rows_written` counted
    once the end is recorded. Ending the run waits for its writers' batches that passed their
    fence (`tagsys.store.writer.check_fence`) to commit and refuses all later ones, and the
    count reads what is committed then: it is exactly what the run left behind."""
    values = {"status": status, "summary": summary, "error": error}
    with unlocked_reads_transaction(engine) as conn:
        if _end(conn, run_id, values):
            written = sa.update(tag_runs).where(tag_runs.c.run_id == run_id)
            conn.execute(written.values(rows_written=count_written(conn)))


def _end(conn: sa.Connection, run_id: str, values: dict[str, Any]) -> bool:
    if values["status"] not in FINAL_RUN_STATUSES:
        raise StoreError(
            f"run status {values['status']!r} is not final: use one of {sorted(FINAL_RUN_STATUSES)}"
        )
    stmt = sa.update(tag_runs).where(tag_runs.c.run_id == run_id, tag_runs.c.status == "running")
    now = database_now(conn)
    return bool(conn.execute(stmt.values(**values, finished_at=now, heartbeat_at=now)).rowcount)


def end_abandoned(*, bind: Bind, run: RunRecord) -> bool:
    """Record `run`, read as abandoned, as `failed`, unless it has beaten since it was read.
    True when it is ended now: from then on its writers' batches are refused (see
    `tagsys.store.writer.check_fence`), so a run that was only slow cannot write behind a
    rollback of it, nor behind the audience index that took it in."""
    beat_at = tag_runs.c.heartbeat_at
    silent = beat_at.is_(None) if run.heartbeat_at is None else beat_at == run.heartbeat_at
    since = run.heartbeat_at or run.started_at
    error = (
        f"abandoned: no heartbeat since {since:%Y-%m-%d %H:%M:%S} UTC (its process stopped or "
        "lost the store); ended by another process, which refuses its further writes"
    )
    stmt = sa.update(tag_runs).where(
        tag_runs.c.run_id == run.run_id, tag_runs.c.status == "running", silent
    )
    with transaction(bind) as conn:
        values = {"status": "failed", "error": error, "finished_at": database_now(conn)}
        return bool(conn.execute(stmt.values(**values)).rowcount)


def get_run(*, bind: Bind, run_id: str) -> RunRecord | None:
    query = sa.select(tag_runs).where(tag_runs.c.run_id == run_id)
    with transaction(bind) as conn:
        found = read_runs(conn, query)
    return found[0] if found else None


def list_runs(
    *,
    bind: Bind,
    limit: int = 100,
    mode: str | None = None,
    status: str | None = None,
    after: tuple[datetime, str] | None = None,
) -> list[RunRecord]:
    """Runs, most recently started first; `after` = (started_at, run_id) of the last run of
    the previous page."""
    query = sa.select(tag_runs)
    if mode is not None:
        query = query.where(tag_runs.c.mode == mode)
    if status is not None:
        query = query.where(tag_runs.c.status == status)
    query = newest_first(query, tag_runs.c.started_at, tag_runs.c.run_id, after, limit)
    with transaction(bind) as conn:
        return read_runs(conn, query)


def get_latest_run(*, bind: Bind, mode: str | None = None) -> RunRecord | None:
    runs = list_runs(bind=bind, limit=1, mode=mode)
    return runs[0] if runs else None


FULL_POPULATION_MODES = ("task-all", "task-tags")


@dataclass(frozen=True)
class TagCount:
    tag_id: int
    tag_name: str
    users: int
    run_id: str
    finished_at: datetime | None


def latest_tag_counts(*, bind: Bind, scan: int = 500) -> dict[int, TagCount]:
    """Per tag, the users matched by the latest completed run over all users that computed it
    (task-all, task-tags; not dry runs), among the latest `scan` such runs."""
    query = (
        sa.select(tag_runs.c.run_id, tag_runs.c.finished_at, tag_runs.c.summary)
        .where(tag_runs.c.status == "completed", tag_runs.c.mode.in_(FULL_POPULATION_MODES))
        .order_by(tag_runs.c.started_at.desc())
        .limit(scan)
    )
    counts: dict[int, TagCount] = {}
    with transaction(bind) as conn:
        for row in conn.execute(query):
            run_id, finished_at, summary = str(row[0]), row[1], row[2]
            if not summary or summary.get("dry_run"):
                continue
            for tag in summary.get("tags", []):
                if tag.get("status") in ("ok", "cleared") and tag["tag_id"] not in counts:
                    users = int(tag.get("matched", 0)) if tag["status"] == "ok" else 0
                    counts[tag["tag_id"]] = TagCount(
                        tag["tag_id"], tag.get("tag_name", ""), users, run_id, finished_at
                    )
    return counts


__all__ = [
    "FINAL_RUN_STATUSES",
    "RUN_STATUSES",
    "RunRecord",
    "TagCount",
    "beat",
    "end_abandoned",
    "finish_run",
    "get_latest_run",
    "get_run",
    "insert_run",
    "latest_tag_counts",
    "list_runs",
    "read_runs",
    "start_run",
]


def runs_generation(*, bind: Bind) -> tuple[int, datetime | None]:
    """(number of runs, latest finish): changes whenever a run starts or ends, so a cache of
    `user_tags` keyed by it is stale once any run may have written."""
    query = sa.select(sa.func.count(), sa.func.max(tag_runs.c.finished_at))
    with transaction(bind) as conn:
        row = conn.execute(query).one()
    latest: datetime | None = row[1]
    return int(row[0]), latest
