"""The `tag_jobs` table: jobs of the REST service, from submission to their final status.

A job is `submitted`, claimed by one service instance (`running`, with the instance as
`owner` and a heartbeat), and ends `completed`, `failed` or `cancelled` exactly once. A
running job whose owner stopped beating is failed by any instance (`reap_jobs`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tagsys.errors import QueueFullError, StoreError
from tagsys.store.adapters import LOCK_TIMEOUT_SECONDS
from tagsys.store.db import (
    Bind,
    database_now,
    newest_first,
    serialized_transaction,
    transaction,
)
from tagsys.store.schema import JOB_STATUSES, tag_jobs

FINAL_JOB_STATUSES = frozenset({"completed", "failed", "cancelled"})
_ALLOWED_FROM: dict[str, frozenset[str]] = {
    "running": frozenset({"submitted"}),
    "completed": frozenset({"running"}),
    "failed": frozenset({"submitted", "running"}),
    "cancelled": frozenset({"submitted", "running"}),
}


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    status: str
    request: dict[str, Any]
    environment: str | None
    submitted_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
    owner: str | None = None
    heartbeat_at: datetime | None = None
    run_id: str | None = None
    cancel_requested: bool = False
    schedule_id: int | None = None
    actor: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES


_JOB_FIELDS = frozenset(f.name for f in fields(JobRecord))


def _job(row: sa.Row[Any]) -> JobRecord:
    values = {k: v for k, v in row._asdict().items() if k in _JOB_FIELDS}
    values["cancel_requested"] = bool(values.get("cancel_requested"))
    return JobRecord(**values)


def _get_job(conn: sa.Connection, job_id: str) -> JobRecord | None:
    row = conn.execute(sa.select(tag_jobs).where(tag_jobs.c.job_id == job_id)).first()
    return None if row is None else _job(row)


def create_job(
    *,
    bind: Bind,
    job_id: str,
    request: Mapping[str, Any],
    environment: str | None = None,
    submitted_at: datetime | None = None,
    actor: str | None = None,
    schedule_id: int | None = None,
) -> JobRecord:
    values: dict[str, Any] = {
        "job_id": job_id,
        "status": "submitted",
        "request": dict(request),
        "environment": environment,
        "actor": actor,
        "schedule_id": schedule_id,
    }
    with transaction(bind) as conn:
        values["submitted_at"] = submitted_at or database_now(conn)
        conn.execute(sa.insert(tag_jobs).values(**values))
        return _get_job(conn, job_id)  # type: ignore[return-value]


def queue_job(
    *,
    bind: sa.Engine,
    limit: int,
    job_id: str,
    request: Mapping[str, Any],
    environment: str | None = None,
    actor: str | None = None,
) -> JobRecord:
    """`create_job`, unless `limit` jobs are already waiting (QueueFullError). Submissions
    are serialized (a server-wide lock per database on MySQL/MariaDB), so concurrent ones from
    any number of instances cannot overshoot the limit."""
    busy = (
        f"the job queue stayed locked for {LOCK_TIMEOUT_SECONDS}s by another submission: "
        "the database is overloaded or a client hangs; retry"
    )
    with serialized_transaction(bind, "queue", busy) as conn:
        waiting = count_jobs(bind=conn, status="submitted")
        if waiting >= limit:
            raise QueueFullError(waiting, limit)
        return create_job(
            bind=conn, job_id=job_id, request=request, environment=environment, actor=actor
        )


def get_job(*, bind: Bind, job_id: str) -> JobRecord | None:
    with transaction(bind) as conn:
        return _get_job(conn, job_id)


def set_job_status(
    *,
    bind: Bind,
    job_id: str,
    status: str,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Move a job to `status` if its current status allows it (a cancelled job stays cancelled).

    Sets started_at on `running`, completed_at on a final status. Returns whether it moved.
    """
    if status not in _ALLOWED_FROM:
        raise StoreError(f"job status {status!r} cannot be set: use one of {list(_ALLOWED_FROM)}")
    stmt = sa.update(tag_jobs).where(
        tag_jobs.c.job_id == job_id, tag_jobs.c.status.in_(_ALLOWED_FROM[status])
    )
    with transaction(bind) as conn:
        when = at or database_now(conn)
        values: dict[str, Any] = {"status": status}
        if status == "running":
            values.update(started_at=when, heartbeat_at=when)
        else:
            values.update(completed_at=when, result=dict(result) if result else None, error=error)
        return bool(conn.execute(stmt.values(**values)).rowcount)


def claim_next_job(*, bind: Bind, owner: str) -> JobRecord | None:
    """Take the oldest submitted job for `owner`, or None. Each job is claimed once: on
    MySQL/MariaDB the candidate row is locked with SKIP LOCKED (instances never wait for each
    other); on SQLite the transaction holds the database's write lock."""
    pick = (
        sa.select(tag_jobs.c.job_id)
        .where(tag_jobs.c.status == "submitted")
        .order_by(tag_jobs.c.submitted_at, tag_jobs.c.job_id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    with transaction(bind) as conn:
        job_id = conn.execute(pick).scalar()
        if job_id is None:
            return None
        now = database_now(conn)
        claimed = conn.execute(
            sa.update(tag_jobs)
            .where(tag_jobs.c.job_id == job_id, tag_jobs.c.status == "submitted")
            .values(status="running", owner=owner, started_at=now, heartbeat_at=now)
        ).rowcount
        return _get_job(conn, job_id) if claimed else None


def job_of_run(*, bind: Bind, run_id: str) -> JobRecord | None:
    """The job that reserved `run_id` (its run may not be recorded yet), or None."""
    with transaction(bind) as conn:
        row = conn.execute(sa.select(tag_jobs).where(tag_jobs.c.run_id == run_id)).first()
        return None if row is None else _job(row)


def _held(job_id: str, owner: str) -> sa.ColumnElement[bool]:
    """The job runs, and `owner` runs it."""
    return sa.and_(
        tag_jobs.c.job_id == job_id, tag_jobs.c.owner == owner, tag_jobs.c.status == "running"
    )


def release_job(*, bind: Bind, job_id: str, owner: str) -> bool:
    """Put a job `owner` claimed but never started back in the queue (its instance is
    stopping); False if it is not such a job."""
    stmt = (
        sa.update(tag_jobs)
        .where(_held(job_id, owner), tag_jobs.c.run_id.is_(None))
        .values(status="submitted", owner=None, started_at=None, heartbeat_at=None)
    )
    with transaction(bind) as conn:
        return bool(conn.execute(stmt).rowcount)


def set_job_run(*, bind: Bind, job_id: str, run_id: str) -> None:
    with transaction(bind) as conn:
        conn.execute(sa.update(tag_jobs).where(tag_jobs.c.job_id == job_id).values(run_id=run_id))


def finish_job(
    *,
    bind: Bind,
    job_id: str,
    owner: str,
    status: str,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """End a job this owner runs; False if it is no longer its running job (e.g. reaped)."""
    if status not in FINAL_JOB_STATUSES:
        raise StoreError(
            f"job status {status!r} is not final: use one of {sorted(FINAL_JOB_STATUSES)}"
        )
    values = {"status": status, "result": dict(result) if result else None, "error": error}
    stmt = sa.update(tag_jobs).where(_held(job_id, owner))
    with transaction(bind) as conn:
        return bool(conn.execute(stmt.values(**values, completed_at=database_now(conn))).rowcount)


def beat_jobs(*, bind: Bind, owner: str, job_ids: Collection[str] | None = None) -> int:
    """Keep the running jobs of `owner` alive (only `job_ids`, when given: those its workers
    still hold; a job a worker lost is then failed by `reap_jobs`). Returns how many."""
    if job_ids is not None and not job_ids:
        return 0
    stmt = sa.update(tag_jobs).where(tag_jobs.c.owner == owner, tag_jobs.c.status == "running")
    if job_ids is not None:
        stmt = stmt.where(tag_jobs.c.job_id.in_(sorted(job_ids)))
    with transaction(bind) as conn:  # stamped once the store lets it write (SQLite may wait)
        return int(conn.execute(stmt.values(heartbeat_at=database_now(conn))).rowcount)


def reap_jobs(
    *, bind: Bind, timeout_seconds: float, now: datetime | None = None
) -> list[JobRecord]:
    """Fail the running jobs whose owner has not beaten for `timeout_seconds` by the
    database's clock (or `now`): the process that ran them died (or lost the store). Returns
    the jobs it failed."""
    failed: list[JobRecord] = []
    with transaction(bind) as conn:
        now = now or database_now(conn)
        stale = (
            sa.select(tag_jobs)
            .where(
                tag_jobs.c.status == "running",
                sa.func.coalesce(tag_jobs.c.heartbeat_at, tag_jobs.c.started_at)
                < now - timedelta(seconds=timeout_seconds),
            )
            .with_for_update(skip_locked=True)
        )
        for job in [_job(row) for row in conn.execute(stale)]:
            reason = (
                f"the service instance running it ({job.owner}) stopped: no heartbeat since "
                f"{job.heartbeat_at or job.started_at:%Y-%m-%d %H:%M:%S} UTC (timeout "
                f"{timeout_seconds:g} s)"
            )
            moved = conn.execute(
                sa.update(tag_jobs)
                .where(tag_jobs.c.job_id == job.job_id, tag_jobs.c.status == "running")
                .values(status="failed", error=reason, completed_at=now)
            ).rowcount
            if moved:
                failed.append(job)
    return failed


def request_cancel(*, bind: Bind, job_id: str) -> JobRecord | None:
    """Cancel a job: a submitted one at once, a running one by flagging it for its owner.
    Returns the job as it now stands (None if unknown)."""
    with transaction(bind) as conn:
        conn.execute(
            sa.update(tag_jobs)
            .where(tag_jobs.c.job_id == job_id, tag_jobs.c.status == "submitted")
            .values(
                status="cancelled",
                completed_at=database_now(conn),
                error="cancelled before it started",
            )
        )
        conn.execute(
            sa.update(tag_jobs)
            .where(tag_jobs.c.job_id == job_id, tag_jobs.c.status == "running")
            .values(cancel_requested=True)
        )
        return _get_job(conn, job_id)


def cancel_requests(*, bind: Bind, owner: str) -> list[str]:
    """Running jobs of `owner` that somebody asked to cancel."""
    query = sa.select(tag_jobs.c.job_id).where(
        tag_jobs.c.owner == owner,
        tag_jobs.c.status == "running",
        tag_jobs.c.cancel_requested == sa.true(),
    )
    with transaction(bind) as conn:
        return [str(row[0]) for row in conn.execute(query)]


def count_jobs(*, bind: Bind, status: str) -> int:
    """Jobs in one status (on the status index: `queue_job` asks this for the queue bound)."""
    query = sa.select(sa.func.count()).where(tag_jobs.c.status == status)
    with transaction(bind) as conn:
        return int(conn.execute(query).scalar() or 0)


def count_jobs_by_status(*, bind: Bind) -> dict[str, int]:
    query = sa.select(tag_jobs.c.status, sa.func.count()).group_by(tag_jobs.c.status)
    with transaction(bind) as conn:
        counts = {str(row[0]): int(row[1]) for row in conn.execute(query)}
    return {status: counts.get(status, 0) for status in JOB_STATUSES}


def list_jobs(
    *,
    bind: Bind,
    status: str | None = None,
    limit: int = 100,
    after: tuple[datetime, str] | None = None,
) -> list[JobRecord]:
    """Most recently submitted first; `after` = (submitted_at, job_id) of the last job of
    the previous page."""
    query = sa.select(tag_jobs)
    if status is not None:
        query = query.where(tag_jobs.c.status == status)
    query = newest_first(query, tag_jobs.c.submitted_at, tag_jobs.c.job_id, after, limit)
    with transaction(bind) as conn:
        return [_job(row) for row in conn.execute(query)]


def fail_interrupted_jobs(
    *, bind: Bind, reason: str, statuses: Sequence[str] = ("running",)
) -> int:
    """Fail every job in `statuses` with `reason` (an operator's cleanup; the service itself
    fails only jobs whose heartbeat stopped, see `reap_jobs`)."""
    unknown = set(statuses) - set(JOB_STATUSES)
    if unknown:
        raise StoreError(f"unknown job status {sorted(unknown)}: use some of {list(JOB_STATUSES)}")
    stmt = sa.update(tag_jobs).where(tag_jobs.c.status.in_(list(statuses)))
    with transaction(bind) as conn:
        stmt = stmt.values(status="failed", error=reason, completed_at=database_now(conn))
        return int(conn.execute(stmt).rowcount)
