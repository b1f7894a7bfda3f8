"""The job lifecycle: `submitted -> running -> completed | failed | cancelled`.

Each service instance runs a bounded pool of worker threads that claim submitted jobs
from `tag_jobs` (each job exactly once across instances) and run them through
`TagSystemAPI.run` on the process's one SparkSession, each job in its own FAIR scheduler
pool. A maintenance thread beats for the instance's running jobs, passes cancellations
on, fails the jobs of instances that stopped beating, and fires due schedules.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import ValidationError

from tagsys.errors import RunCancelled, TagSysError
from tagsys.service.observability import Metrics, request_id
from tagsys.service.requests import TriggerRequest
from tagsys.store import jobs as store_jobs
from tagsys.store import runs as store_runs

if TYPE_CHECKING:
    from tagsys.api import TagSystemAPI
    from tagsys.engine.plan import RunRequest
    from tagsys.engine.summary import RunSummary
    from tagsys.store.jobs import JobRecord

log = logging.getLogger(__name__)

EXPORT_MODE = "audience-export"
"""The `mode` of a job that exports an audience instead of running tags."""
MISSED_BEATS = 3
"""A running job is failed after this many heartbeat intervals without a beat."""
POLL_SECONDS = 1.0
END_RETRY_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0)
"""Waits between attempts to record a job's end while the store is away (30 s in all); after
that the job, no longer beaten, is failed by the heartbeat check."""


def job_result(summary: dict[str, Any]) -> dict[str, Any]:
    """The seed's `result` (`total_users`, `message`) beside the run's whole summary."""
    users = int(summary.get("users_evaluated") or 0)
    status = summary.get("status")
    verb = "Successfully processed" if status == "completed" else f"Run {status} after processing"
    return {"total_users": users, "message": f"{verb} {users} users", "run": summary}


class JobRunner:
    """Runs jobs of the store in this process; `start` once, `stop` at shutdown."""

    def __init__(
        self,
        api: TagSystemAPI,
        engine: sa.Engine,
        instance: str,
        metrics: Metrics,
        *,
        workers: int,
        heartbeat_seconds: float,
        today: Callable[[], date],
        on_tick: Callable[[], None] = lambda: None,
    ) -> None:
        self.api = api
        self.engine = engine
        self.instance = instance
        self.metrics = metrics
        self.workers = workers
        self.heartbeat_seconds = heartbeat_seconds
        self.today = today
        self.on_tick = on_tick
        self._stop = threading.Event()  # no more claims, ticks
        self._halt = threading.Event()  # no more beats: set once the workers are done
        self._wake = threading.Condition()
        self._running: dict[str, str | None] = {}  # job id -> run id (None: not a run)
        self._exports: dict[str, threading.Event] = {}  # job id -> what stops its export
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._workers: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        for index in range(self.workers):
            name = f"tagsys-job-worker-{index}"
            self._workers.append(self._spawn(name, functools.partial(self._work, index)))
        self._spawn("tagsys-job-maintenance", self._maintain)
        self._spawn("tagsys-job-ticks", self._ticks)

    def _spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming and cancel the running jobs (a restart would fail them anyway);
        a job whose run does not stop within `timeout` is recorded here: as its run ended,
        or cancelled. Its heartbeat goes on until then (else another instance fails it)."""
        self._stop.set()
        with self._lock:
            running = dict(self._running)
        for job_id in running:
            log.info("stopping: cancelling job %s", job_id)
            self._cancel_local(job_id)
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = dict(self._running)
        for job_id, run_id in left.items():
            self._record_left(job_id, run_id)
        self._halt.set()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _record_left(self, job_id: str, run_id: str | None) -> None:
        """A job still running as the service stops: recorded as its run ended, if it did (only
        the index's catch-up or the job's own record was left), else cancelled."""
        record = self._run_record(run_id)
        if record is not None and record.status != "running":
            result = job_result(record.summary) if record.summary else None
            status, error = record.status, record.error
        else:
            status, result, error = "cancelled", None, "the service instance stopped while it ran"
        try:
            store_jobs.finish_job(
                bind=self.engine,
                job_id=job_id,
                owner=self.instance,
                status=status,
                result=result,
                error=error,
            )
        except TagSysError as exc:
            log.warning("stopping: the end of job %s could not be recorded: %s", job_id, exc)

    def _run_record(self, run_id: str | None) -> store_runs.RunRecord | None:
        if run_id is None:
            return None
        try:
            return store_runs.get_run(bind=self.engine, run_id=run_id)
        except TagSysError:
            return None

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    # --- cancellation --------------------------------------------------------------------
    def cancel(self, job_id: str) -> JobRecord | None:
        job = store_jobs.request_cancel(bind=self.engine, job_id=job_id)
        self._cancel_local(job_id)
        return job

    def _cancel_local(self, job_id: str) -> None:
        with self._lock:
            run_id = self._running.get(job_id)
            export = self._exports.get(job_id)
        if run_id is not None:
            self.api.cancel_run(run_id)
        if export is not None:
            export.set()

    # --- workers -------------------------------------------------------------------------
    def _work(self, index: int) -> None:
        self.api.spark.sparkContext.setLocalProperty("spark.scheduler.pool", f"job{index}")
        while not self._stop.is_set():
            try:
                job = store_jobs.claim_next_job(bind=self.engine, owner=self.instance)
            except Exception as exc:  # e.g. the connection pool's timeout: try again later
                log.warning("cannot claim jobs: %s: %s", type(exc).__name__, exc)
                job = None
            if job is None:
                with self._wake:
                    self._wake.wait(POLL_SECONDS)
                continue
            try:
                self._run(job)
            except Exception:  # a defect of ours: the worker goes on, the heartbeat check ends it
                log.exception("job %s: the worker failed", job.job_id)

    def _run(self, job: JobRecord) -> None:
        with self._lock:  # stop() sets _stop before it reads _running under this lock
            stopping = self._stop.is_set()
            if not stopping:
                self._running[job.job_id] = None  # beaten from now on, only while it runs here
        if stopping:
            self._release(job)
            return
        token = request_id.set(f"job:{job.job_id}")
        run_id = uuid.uuid4().hex
        try:
            log.info("job %s: running %s", job.job_id, job.request)
            if job.request.get("mode") == EXPORT_MODE:
                self._export(job)
                return
            try:
                request = TriggerRequest.model_validate(job.request).to_run_request(self.today())
            except (ValidationError, TagSysError) as exc:
                self._finish(job, "failed", None, f"the job's request is not valid: {exc}")
                return
            with self._lock:  # stop() may have read _running before this run id was known
                stopping = self._stop.is_set()
                if not stopping:
                    self._running[job.job_id] = run_id
            if stopping:
                self._release(job)
                return
            store_jobs.set_job_run(bind=self.engine, job_id=job.job_id, run_id=run_id)
            if job.cancel_requested:
                self.api.cancel_run(run_id)
            self._execute(job, request, run_id)
        except Exception as exc:  # the worker must survive anything a job does
            log.exception("job %s failed unexpectedly", job.job_id)
            self._finish(job, "failed", None, f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._running.pop(job.job_id, None)
            request_id.reset(token)

    def _release(self, job: JobRecord) -> None:
        """A job claimed as this instance began to stop goes back to the queue, for another
        instance or the restart (else the reaper fails it once its beats stop)."""
        try:
            if store_jobs.release_job(bind=self.engine, job_id=job.job_id, owner=self.instance):
                log.info("stopping: job %s goes back to the queue", job.job_id)
        except TagSysError as exc:
            log.warning("stopping: job %s could not go back to the queue: %s", job.job_id, exc)

    def _export(self, job: JobRecord) -> None:
        request = job.request
        stop = threading.Event()
        with self._lock:
            self._exports[job.job_id] = stop
        if job.cancel_requested:
            stop.set()
        try:
            result = self.api.audiences.export(
                request["expression"], request["path"], request.get("format"), stop
            )
        except RunCancelled as exc:
            self._record_end(job, "cancelled", None, str(exc))
            return
        except TagSysError as exc:
            self._record_end(job, "failed", None, str(exc))
            return
        finally:
            with self._lock:
                self._exports.pop(job.job_id, None)
        done = {"path": result.path, "format": result.format, "rows": result.rows}
        self._record_end(
            job, "completed", {"export": done, "message": f"exported {result.rows} users"}, None
        )

    def _execute(self, job: JobRecord, request: RunRequest, run_id: str) -> None:
        started = time.monotonic()
        try:
            summary = self.api.run(request, run_id=run_id)
        except RunCancelled as exc:
            self._finish(job, "cancelled", self._summary_of(run_id), str(exc), started)
            return
        except TagSysError as exc:
            self._finish(job, "failed", self._summary_of(run_id), str(exc), started)
            return
        finally:
            self.api.forget_cancel(run_id)  # one the maintenance passed on as the run ended
        status = "completed" if summary.succeeded else "failed"
        error = None if summary.succeeded else _failed_tags(summary)
        self._finish(job, status, summary.to_dict(), error, started)
        if not summary.dry_run:
            self.metrics.rows_written.labels(summary.mode).observe(
                summary.rows_inserted + summary.rows_updated
            )

    def _summary_of(self, run_id: str) -> dict[str, Any] | None:
        record = self._run_record(run_id)
        return None if record is None else record.summary

    def _finish(
        self,
        job: JobRecord,
        status: str,
        summary: dict[str, Any] | None,
        error: str | None,
        started: float | None = None,
    ) -> None:
        result = job_result(summary) if summary is not None else None
        if started is not None:
            mode = str((summary or {}).get("mode", "unknown"))
            self.metrics.run_duration.labels(mode, status).observe(time.monotonic() - started)
        self._record_end(job, status, result, error)

    def _record_end(
        self, job: JobRecord, status: str, result: dict[str, Any] | None, error: str | None
    ) -> None:
        self.metrics.jobs_finished.labels(status).inc()
        for wait in (*END_RETRY_SECONDS, None):
            try:
                recorded = store_jobs.finish_job(
                    bind=self.engine,
                    job_id=job.job_id,
                    owner=self.instance,
                    status=status,
                    result=result,
                    error=error,
                )
                break
            except TagSysError as exc:
                if wait is None or self._stop.is_set():
                    log.error(  # no longer beaten: the heartbeat check fails it
                        "job %s: its end (%s) could not be recorded: %s", job.job_id, status, exc
                    )
                    return
                log.warning(
                    "job %s: recording its end (%s) failed, again in %s s: %s",
                    job.job_id,
                    status,
                    wait,
                    exc,
                )
                time.sleep(wait)
        if not recorded:
            log.warning(
                "job %s: no longer this instance's running job; its end (%s) is not recorded",
                job.job_id,
                status,
            )
        log.info("job %s: %s", job.job_id, status if error is None else f"{status}: {error}")

    # --- maintenance ---------------------------------------------------------------------
    def _maintain(self) -> None:
        last_beat = 0.0
        poll = min(POLL_SECONDS, self.heartbeat_seconds / 2)  # beats however short the interval
        while not self._halt.wait(poll if last_beat else 0):
            now = time.monotonic()
            try:
                for job_id in store_jobs.cancel_requests(bind=self.engine, owner=self.instance):
                    self._cancel_local(job_id)
                if now - last_beat >= self.heartbeat_seconds:
                    last_beat = now
                    with self._lock:
                        held = list(self._running)
                    store_jobs.beat_jobs(bind=self.engine, owner=self.instance, job_ids=held)
                    self._reap()
            except TagSysError as exc:
                log.warning("job maintenance: %s", exc)
            except Exception:
                log.exception("job maintenance failed; it goes on")

    def _ticks(self) -> None:
        """`on_tick` (due schedules, the audience index's catch-up) on a thread of its own:
        it may wait on a lock for as long as a rebuild takes, and heartbeats must not."""
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.on_tick()
            except TagSysError as exc:
                log.warning("service tick: %s", exc)
            except Exception:
                log.exception("service tick failed; it goes on")

    def _reap(self) -> None:
        timeout = MISSED_BEATS * self.heartbeat_seconds
        for job in store_jobs.reap_jobs(bind=self.engine, timeout_seconds=timeout):
            log.warning("job %s failed: its instance %s stopped beating", job.job_id, job.owner)
            self.metrics.jobs_finished.labels("failed").inc()


def _failed_tags(summary: RunSummary) -> str:
    failed = summary.failed_tags
    if not failed:
        return summary.error or "the run failed"
    names = "; ".join(f"tag {t.tag_id} ({t.tag_name}): {t.message}" for t in failed[:10])
    return f"{len(failed)} tag(s) failed: {names}"
