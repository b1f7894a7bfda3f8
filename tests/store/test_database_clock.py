"""Heartbeats are stamped and judged by the database's clock, on SQLite and MariaDB: an
instance whose host clock is an hour off neither fails another instance's live job nor
reads a live run as abandoned, and still fails a job or sees a run that really went silent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from tagsys.store import jobs, runs
from tagsys.store.db import database_now

HOST_CLOCK_MODULES = ("tagsys.store.jobs", "tagsys.store.runs", "tagsys.audiences.maintain")


@pytest.fixture
def host_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """Set this process's clock `offset` away from the real time (where the product reads it)."""

    def skew(offset: timedelta) -> None:
        class SkewedDatetime(datetime):
            @classmethod
            def now(cls, tz: object = None) -> SkewedDatetime:  # type: ignore[override]
                return super().now(tz) + offset  # type: ignore[arg-type,return-value]

        for module in HOST_CLOCK_MODULES:
            monkeypatch.setattr(f"{module}.datetime", SkewedDatetime, raising=False)

    return skew


def _silence(engine: sa.Engine, table: sa.Table, seconds: float) -> None:
    """Every row's last heartbeat `seconds` ago by the database's clock."""
    with engine.begin() as conn:
        beat_at = database_now(conn) - timedelta(seconds=seconds)
        conn.execute(sa.update(table).values(heartbeat_at=beat_at))


def test_the_database_clock_is_utc_now(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        now = database_now(conn)
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


@pytest.mark.parametrize("offset_hours", [1, -1])
def test_a_skewed_instance_fails_only_jobs_that_went_silent(
    engine: sa.Engine, host_clock: Callable[[timedelta], None], offset_hours: int
) -> None:
    jobs.create_job(bind=engine, job_id="live", request={})
    assert jobs.claim_next_job(bind=engine, owner="there") is not None
    assert jobs.beat_jobs(bind=engine, owner="there") == 1
    host_clock(timedelta(hours=offset_hours))  # from now on this process is a skewed host
    assert jobs.reap_jobs(bind=engine, timeout_seconds=30) == []

    _silence(engine, jobs.tag_jobs, 60)
    [reaped] = jobs.reap_jobs(bind=engine, timeout_seconds=30)
    assert reaped.job_id == "live"
    job = jobs.get_job(bind=engine, job_id="live")
    assert job is not None and job.status == "failed"
    assert job.completed_at is not None
    assert abs(job.completed_at - datetime.now(UTC)) < timedelta(seconds=5)  # the true time


@pytest.mark.parametrize("offset_hours", [1, -1])
def test_a_skewed_reader_sees_a_live_run_running_and_a_silent_one_abandoned(
    engine: sa.Engine, host_clock: Callable[[timedelta], None], offset_hours: int
) -> None:
    runs.start_run(
        bind=engine,
        run_id="r1",
        mode="task-all",
        as_of=date(2026, 1, 1),
        host="elsewhere",
        pid=1,
        heartbeat_seconds=10,
    )
    assert runs.beat(bind=engine, run_id="r1", phase="compute")
    host_clock(timedelta(hours=offset_hours))  # from now on this process is a skewed reader
    run = runs.get_run(bind=engine, run_id="r1")
    assert run is not None and run.effective_status() == "running"
    assert [r.effective_status() for r in runs.list_runs(bind=engine)] == ["running"]

    _silence(engine, runs.tag_runs, 31)
    run = runs.get_run(bind=engine, run_id="r1")
    assert run is not None and run.effective_status() == "abandoned"

    runs.finish_run(bind=engine, run_id="r1", status="completed")
    run = runs.get_run(bind=engine, run_id="r1")
    assert run is not None and run.finished_at is not None
    assert run.finished_at >= run.started_at  # one clock for both ends
