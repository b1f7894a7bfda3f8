"""Job claims, heartbeats and reaping, and schedule firing, on SQLite and MariaDB: each job
is claimed once and each due firing creates one job, however many claimers race."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tagsys.errors import ConflictError, QueueFullError, UsageError
from tagsys.service.scheduler import check_cron, fire_due, next_fire
from tagsys.store import jobs, schedules
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade

STORES = ["sqlite_url", pytest.param("mariadb_url", marks=pytest.mark.mariadb)]


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest) -> sa.Engine:
    url = request.getfixturevalue(request.param)
    upgrade(url)
    return create_store_engine(url)


def test_racing_claimers_take_each_job_exactly_once(engine: sa.Engine) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(40):
        jobs.create_job(
            bind=engine, job_id=f"j{n:02d}", request={}, submitted_at=base + timedelta(seconds=n)
        )
    claimed: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(4)

    def claim(owner: str) -> None:
        start.wait()
        while (job := jobs.claim_next_job(bind=engine, owner=owner)) is not None:
            with lock:
                claimed[job.job_id] += 1

    threads = [threading.Thread(target=claim, args=(f"i{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == [f"j{n:02d}" for n in range(40)]
    assert set(claimed.values()) == {1}
    running = jobs.list_jobs(bind=engine, status="running", limit=100)
    assert len(running) == 40 and all(j.owner and j.heartbeat_at for j in running)


def test_racing_submitters_never_queue_past_the_limit(engine: sa.Engine) -> None:
    """Counting the waiting jobs and adding one is one step: 20 submitters at once on four
    engines (four service instances), with one job waiting and a limit of 3, queue exactly 2.
    (Two steps queued 10-19 of 20 here once the connections were open.)"""
    engines = [engine, *(create_store_engine(engine.url) for _ in range(3))]
    jobs.create_job(bind=engine, job_id="waiting", request={})
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(20)

    def submit(n: int) -> None:
        bind = engines[n % 4]
        jobs.count_jobs(bind=bind, status="submitted")  # its connection is open: no head start
        start.wait()
        try:
            jobs.queue_job(bind=bind, limit=3, job_id=f"q{n}", request={})
            outcome = "queued"
        except QueueFullError as exc:
            assert (exc.waiting, exc.limit) == (3, 3)
            outcome = "full"
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for other in engines[1:]:
        other.dispose()
    assert outcomes == {"queued": 2, "full": 18}
    assert jobs.count_jobs(bind=engine, status="submitted") == 3


def test_oldest_job_first_and_a_silent_owner_s_jobs_are_failed_with_the_reason(
    engine: sa.Engine,
) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    jobs.create_job(bind=engine, job_id="late", request={}, submitted_at=base + timedelta(hours=1))
    jobs.create_job(bind=engine, job_id="early", request={}, submitted_at=base)
    assert jobs.claim_next_job(bind=engine, owner="dead")
    alive = jobs.claim_next_job(bind=engine, owner="alive")
    assert alive is not None and alive.job_id == "late"

    later = datetime.now(UTC) + timedelta(seconds=20)
    jobs.beat_jobs(bind=engine, owner="alive")
    assert jobs.reap_jobs(bind=engine, timeout_seconds=30, now=later) == []
    with engine.begin() as conn:  # "alive" beat just now, "dead" a minute ago
        conn.execute(
            sa.update(jobs.tag_jobs)
            .where(jobs.tag_jobs.c.owner == "dead")
            .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    reaped = jobs.reap_jobs(bind=engine, timeout_seconds=30)
    assert [j.job_id for j in reaped] == ["early"]
    early = jobs.get_job(bind=engine, job_id="early")
    assert early is not None and early.status == "failed"
    assert early.error is not None and "(dead) stopped" in early.error
    # The dead owner cannot record an end any more; the live one can.
    assert not jobs.finish_job(bind=engine, job_id="early", owner="dead", status="completed")
    assert jobs.finish_job(bind=engine, job_id="late", owner="alive", status="completed")


def test_an_owner_beats_only_the_jobs_its_workers_hold(engine: sa.Engine) -> None:
    """A job whose worker was lost is no longer beaten, so the heartbeat check fails it."""
    for job_id in ("held", "lost"):
        jobs.create_job(bind=engine, job_id=job_id, request={})
        assert jobs.claim_next_job(bind=engine, owner="me")
    with engine.begin() as conn:
        conn.execute(
            sa.update(jobs.tag_jobs).values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert jobs.beat_jobs(bind=engine, owner="me", job_ids=[]) == 0
    assert jobs.beat_jobs(bind=engine, owner="me", job_ids=["held"]) == 1
    reaped = jobs.reap_jobs(bind=engine, timeout_seconds=30)
    assert [j.job_id for j in reaped] == ["lost"]


def test_a_running_job_that_never_beat_is_reaped_by_its_start(engine: sa.Engine) -> None:
    """Jobs left running by a version before heartbeats have none: their start counts."""
    jobs.create_job(bind=engine, job_id="old", request={})
    assert jobs.claim_next_job(bind=engine, owner="gone") is not None
    with engine.begin() as conn:
        conn.execute(
            sa.update(jobs.tag_jobs).values(
                heartbeat_at=None, started_at=datetime.now(UTC) - timedelta(minutes=5)
            )
        )
    [reaped] = jobs.reap_jobs(bind=engine, timeout_seconds=30)
    assert reaped.job_id == "old"
    job = jobs.get_job(bind=engine, job_id="old")
    assert job is not None and job.status == "failed" and "no heartbeat since" in (job.error or "")


def test_cancel_ends_a_submitted_job_and_flags_a_running_one(engine: sa.Engine) -> None:
    jobs.create_job(bind=engine, job_id="queued", request={})
    jobs.create_job(
        bind=engine, job_id="busy", request={}, submitted_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    assert jobs.claim_next_job(bind=engine, owner="me") is not None  # takes "busy"

    queued = jobs.request_cancel(bind=engine, job_id="queued")
    busy = jobs.request_cancel(bind=engine, job_id="busy")
    assert queued is not None and queued.status == "cancelled"
    assert busy is not None and (busy.status, busy.cancel_requested) == ("running", True)
    assert jobs.cancel_requests(bind=engine, owner="me") == ["busy"]
    assert jobs.cancel_requests(bind=engine, owner="someone else") == []
    assert jobs.request_cancel(bind=engine, job_id="nope") is None


def _schedule(engine: sa.Engine, next_at: datetime) -> schedules.ScheduleRecord:
    return schedules.create_schedule(
        bind=engine,
        name="nightly",
        cron="0 2 * * *",
        timezone="Asia/Shanghai",
        request={"mode": "task-all"},
        next_fire_at=next_at,
    )


def test_a_schedule_missed_during_downtime_fires_once_then_waits_for_its_next_slot(
    engine: sa.Engine,
) -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    schedule = _schedule(engine, now - timedelta(days=3))
    created = fire_due(engine, "local", now)
    assert len(created) == 1
    assert fire_due(engine, "local", now + timedelta(minutes=1)) == []
    fired = schedules.get_schedule(bind=engine, schedule_id=schedule.schedule_id)
    assert fired is not None and fired.last_job_id == created[0]
    # 02:00 in Shanghai is 18:00 UTC the day before.
    assert fired.next_fire_at == datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
    job = jobs.get_job(bind=engine, job_id=created[0])
    assert job is not None and job.schedule_id == schedule.schedule_id
    assert job.actor == "schedule:nightly" and job.request == {"mode": "task-all"}


def test_racing_instances_fire_a_due_schedule_once(engine: sa.Engine) -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    _schedule(engine, now - timedelta(minutes=5))
    created: list[str] = []
    start = threading.Barrier(4)

    def fire() -> None:
        start.wait()
        created.extend(fire_due(engine, "local", now))

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 1
    assert len(jobs.list_jobs(bind=engine)) == 1


def test_a_schedule_name_taken_meanwhile_is_a_conflict(engine: sa.Engine) -> None:
    """The service checks the name first; a create that lost the race gets 409, not 503."""
    made = {"cron": "0 2 * * *", "timezone": "UTC", "request": {"mode": "task-all"}}
    later = datetime(2030, 1, 1, tzinfo=UTC)
    schedules.create_schedule(bind=engine, name="nightly", next_fire_at=later, **made)
    with pytest.raises(ConflictError, match="a schedule named 'nightly' exists already"):
        schedules.create_schedule(bind=engine, name="nightly", next_fire_at=later, **made)


def test_cron_expressions_are_checked_and_read_in_their_time_zone() -> None:
    assert check_cron("  0   2 * * * ") == "0 2 * * *"
    for bad in ("0 2 * *", "61 * * * *", "every day", "0 2 * * * *"):
        with pytest.raises(Exception, match="not a cron expression"):
            check_cron(bad)
    for never in ("0 0 30 2 *", "0 0 31 4 *"):  # valid fields, no such day
        with pytest.raises(UsageError, match="never falls due"):
            check_cron(never)
    after = datetime(2026, 3, 10, 17, 59, tzinfo=UTC)
    assert next_fire("0 2 * * *", "Asia/Shanghai", after) == datetime(
        2026, 3, 10, 18, 0, tzinfo=UTC
    )
    assert next_fire("0 2 * * *", "UTC", after) == datetime(2026, 3, 11, 2, 0, tzinfo=UTC)


def test_a_wall_clock_time_shown_twice_when_the_clocks_go_back_fires_once() -> None:
    """Berlin, 2025-10-26: 02:30 happens at 00:30 UTC (summer time) and at 01:30 UTC."""
    first = next_fire("30 2 * * *", "Europe/Berlin", datetime(2025, 10, 25, 12, 0, tzinfo=UTC))
    assert first == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert next_fire("30 2 * * *", "Europe/Berlin", first) == datetime(
        2025, 10, 27, 1, 30, tzinfo=UTC
    )
    hourly = [datetime(2025, 10, 26, 0, 0, tzinfo=UTC)]  # 02:00 summer time
    for _ in range(3):
        hourly.append(next_fire("0 * * * *", "Europe/Berlin", hourly[-1]))
    assert [t.hour for t in hourly] == [0, 2, 3, 4]  # 02:00 winter time (01:00 UTC) was shown
    spring = next_fire("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    # 02:30 is never shown that night (02:00 -> 03:00): it fires once, as the clocks jump
    assert (
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
        <= spring
        <= datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    )
    assert next_fire("30 2 * * *", "Europe/Berlin", spring) == datetime(
        2026, 3, 30, 0, 30, tzinfo=UTC
    )
