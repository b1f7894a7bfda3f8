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

import sqlalchemy as sa

from tagsys.errors import RunCancelled
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
