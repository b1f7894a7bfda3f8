"""The job runner's own threads against a real store, without Spark (stand-ins for the API
where a test needs workers)."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa

from tagsys.errors import RunCancelled
from tagsys.service import jobs as service_jobs
from tagsys.service.jobs import EXPORT_MODE, POLL_SECONDS, JobRunner
from tagsys.service.observability import Metrics, StoreCollector
from tagsys.store import jobs
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade

NO_SPARK = SimpleNamespace(sparkContext=SimpleNamespace(setLocalProperty=lambda *_: None))
"""What a worker thread asks of the API's Spark session: to name its scheduler pool."""


def store_at(path: Path) -> sa.Engine:
    url = f"sqlite:///{path}"
    upgrade(url)
    return create_store_engine(url)


def runner_for(api: Any, engine: sa.Engine, workers: int, **kwargs: Any) -> JobRunner:
    return JobRunner(
        cast(Any, api),
        engine,
        "me",
        Metrics(StoreCollector(lambda: ({}, {}))),
        workers=workers,
        heartbeat_seconds=0.2,
        today=date.today,
        **kwargs,
    )


def wait_while_running(engine: sa.Engine, job_id: str, why: str) -> jobs.JobRecord:
    deadline = time.monotonic() + 10
    while (job := jobs.get_job(bind=engine, job_id=job_id)) and job.status == "running":
        assert time.monotonic() < deadline, why
        time.sleep(0.05)
    assert job is not None
    return job


def test_a_tick_waiting_on_a_lock_does_not_hold_up_heartbeats_and_reaping(
    tmp_path: Path,
) -> None:
    """The audience index's catch-up can wait as long as a rebuild holds its lock; meanwhile
    the maintenance thread still fails a dead instance's job (and beats live ones)."""
    engine = store_at(tmp_path / "jobs.db")
    release = threading.Event()
    ticking = threading.Event()

    def blocked_tick() -> None:
        ticking.set()
        release.wait(30)

    runner = runner_for(None, engine, 0, on_tick=blocked_tick)  # no workers: no API
    jobs.create_job(bind=engine, job_id="orphan", request={})
    assert jobs.claim_next_job(bind=engine, owner="dead")
    runner.start()
    try:
        assert ticking.wait(10)
        with engine.begin() as conn:  # its owner dies only now, while the tick waits
            conn.execute(
                sa.update(jobs.tag_jobs).values(
                    heartbeat_at=datetime.now(UTC) - timedelta(minutes=1)
                )
            )
        job = wait_while_running(engine, "orphan", "no reaping while a tick waited")
        assert job.status == "failed"
        assert runner.alive()
    finally:
        release.set()
        runner.stop(timeout=5)
        engine.dispose()


class SlowExports:
    """Stands in for `TagSystemAPI` where a real export is too quick to cancel midway: its
    export runs until the runner sets the stop it was given (then stops as a real one does)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.spark = NO_SPARK
        self.audiences = SimpleNamespace(export=self.export)

    def export(self, expression: Any, path: str, fmt: Any, stop: threading.Event) -> None:
        self.started.set()
        assert stop.wait(10), "the runner never passed the cancel on"
        raise RunCancelled("the export was cancelled; nothing was written")


def test_cancelling_a_running_audience_export_stops_it(tmp_path: Path) -> None:
    engine = store_at(tmp_path / "jobs.db")
    api = SlowExports()
    runner = runner_for(api, engine, 1)
    request = {"mode": EXPORT_MODE, "expression": 1, "path": str(tmp_path / "a.csv")}
    jobs.create_job(bind=engine, job_id="export", request=request)
    runner.start()
    try:
        assert api.started.wait(10)
        runner.cancel("export")
        job = wait_while_running(engine, "export", "the export ran on after its cancel")
        assert job.status == "cancelled"
        assert "cancelled" in (job.error or "")
    finally:
        runner.stop(timeout=5)
        engine.dispose()


def test_a_job_claimed_as_the_runner_stops_goes_back_to_the_queue(tmp_path: Path) -> None:
    """The store's write lock holds the worker inside its claim while stop() begins; the job
    it then claims is neither run nor lost, but waiting again for another instance."""
    path = tmp_path / "jobs.db"
    engine = store_at(path)
    runs: list[Any] = []
    api = SimpleNamespace(spark=NO_SPARK, run=lambda *args, **kwargs: runs.append(args))
    runner = runner_for(api, engine, 1)
    jobs.create_job(bind=engine, job_id="late", request={"mode": "task-all"})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the worker's next claim waits on this
    runner.start()
    stopping = threading.Thread(target=runner.stop, kwargs={"timeout": 10})
    try:
        time.sleep(POLL_SECONDS * 2)  # the worker polled since, and now waits inside a claim
        stopping.start()
        while not runner._stop.is_set():
            time.sleep(0.01)
        holder.execute("COMMIT")
        stopping.join(15)
        job = jobs.get_job(bind=engine, job_id="late")
        assert job is not None and (job.status, job.owner, job.started_at) == (
            "submitted",
            None,
            None,
        )
        assert runs == []
    finally:
        holder.close()
        stopping.join(15)
        engine.dispose()


class SlowToEnd:
    """Stands in for `TagSystemAPI.run`: records its run completed, then, like the audience
    index's catch-up after a big run, takes `hold` seconds more and ignores cancels."""

    def __init__(self, engine: sa.Engine, hold: float) -> None:
        self.engine, self.hold = engine, hold
        self.spark = NO_SPARK
        self.recorded = threading.Event()

    def run(self, request: Any, run_id: str) -> Any:
        from tagsys.store import runs

        runs.start_run(bind=self.engine, run_id=run_id, mode="task-all", as_of=date.today(),
                       host="here", pid=1, heartbeat_seconds=1)  # fmt: skip
        summary = {"status": "completed", "mode": "task-all", "users_evaluated": 7}
        runs.finish_run(bind=self.engine, run_id=run_id, status="completed", summary=summary)
        self.recorded.set()
        time.sleep(self.hold)
        raise RunCancelled("too late: the run had completed")

    def cancel_run(self, run_id: str) -> None:
        pass

    def forget_cancel(self, run_id: str) -> None:
        pass


def test_a_stopping_runner_beats_until_its_jobs_end_and_records_a_finished_run_as_such(
    tmp_path: Path,
) -> None:
    """While stop() waits for a job, other instances must not fail it for want of beats; a
    job whose run had completed is recorded completed (with its result), not cancelled."""
    engine = store_at(tmp_path / "jobs.db")
    api = SlowToEnd(engine, hold=4.0)
    runner = runner_for(api, engine, 1)  # beats every 0.2 s: others reap after 0.6 s
    jobs.create_job(bind=engine, job_id="big", request={"mode": "task-all"})
    reaped: list[str] = []
    stopped = threading.Event()

    def other_instance() -> None:
        while not stopped.is_set():
            reaped.extend(j.job_id for j in jobs.reap_jobs(bind=engine, timeout_seconds=0.6))
            time.sleep(0.1)

    runner.start()
    reaper = threading.Thread(target=other_instance)
    try:
        assert api.recorded.wait(10)
        reaper.start()
        runner.stop(timeout=2.0)
        stopped.set()
        reaper.join(10)
        job = jobs.get_job(bind=engine, job_id="big")
        assert reaped == []
        assert job is not None and job.status == "completed", job
        assert job.result is not None and job.result["total_users"] == 7
    finally:
        stopped.set()
        engine.dispose()


def test_a_worker_outlives_a_claim_that_fails_with_any_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's TimeoutError is not a store error; the worker logs it and claims again."""
    engine = store_at(tmp_path / "jobs.db")
    runs: list[Any] = []
    api = SimpleNamespace(
        spark=NO_SPARK,
        run=lambda request, run_id: runs.append(run_id) or _done(),
        cancel_run=lambda run_id: None,
        forget_cancel=lambda run_id: None,
    )
    runner = runner_for(api, engine, 1)
    claim = jobs.claim_next_job
    failures = [sa.exc.TimeoutError("QueuePool limit reached")]

    def flaky_claim(**kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return claim(**kwargs)

    jobs.create_job(bind=engine, job_id="after", request={"mode": "task-all"})
    monkeypatch.setattr(jobs, "claim_next_job", flaky_claim)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not runs:
            assert time.monotonic() < deadline, "the worker died on the failed claim"
            time.sleep(0.05)
        assert runner.alive() and not failures
    finally:
        runner.stop(timeout=5)
        engine.dispose()


def _done() -> Any:
    return SimpleNamespace(
        succeeded=True, dry_run=True, to_dict=lambda: {"status": "completed", "mode": "task-all"}
    )


def test_an_end_that_cannot_be_recorded_is_let_go_not_recorded_as_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the store stays away as a job ends, the job is let go (the heartbeat check ends
    it); it used to be recorded `failed` ("unexpected error") once the store came back."""
    from tagsys.errors import StoreError

    engine = store_at(tmp_path / "jobs.db")
    api = SimpleNamespace(spark=NO_SPARK, cancel_run=lambda run_id: None)
    runner = runner_for(api, engine, 0)
    jobs.create_job(bind=engine, job_id="j", request={"mode": EXPORT_MODE, "expression": 1,
                                                      "path": str(tmp_path / "x.csv")})  # fmt: skip
    job = jobs.claim_next_job(bind=engine, owner="me")
    assert job is not None
    ends: list[str] = []

    def store_away(**kwargs: Any) -> bool:
        ends.append(kwargs["status"])
        raise StoreError("the store is away")

    monkeypatch.setattr(jobs, "finish_job", store_away)
    api.audiences = SimpleNamespace(
        export=lambda *args: SimpleNamespace(path="x", format="csv", rows=1)
    )
    monkeypatch.setattr(service_jobs, "END_RETRY_SECONDS", ())  # the store stays away
    runner._run(job)
    assert ends == ["completed"]  # not also "failed"
    assert runner.busy == 0
    engine.dispose()
