"""A run's `tag_runs` row while it works: written at the start, a heartbeat thread keeps it
alive, each phase is noted, and the end (completed, failed, cancelled) is written once.

A process that dies leaves a `running` row whose heartbeat stops: readers show it as
`abandoned` (see `tagsys.store.runs.RunRecord.effective_status`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa

from tagsys.errors import RunCancelled, StoreError, TagSysError
from tagsys.stopping import shielded, stop_requested
from tagsys.store import journal, runs
from tagsys.store.db import create_store_engine
from tagsys.store.schema import user_tags

if TYPE_CHECKING:
    from tagsys.engine.summary import RunSummary

log = logging.getLogger(__name__)
T = TypeVar("T")

FINISH_RETRY_SECONDS = 30.0
"""How long the final status is retried while the store is unreachable (e.g. restarting)."""


class RunRecorder:
    """Records one run. `start`, then `phase` as it goes, then exactly one of `finish`/`fail`."""

    def __init__(self, db_url: str, heartbeat_seconds: float, journal: bool = False) -> None:
        self.engine = create_store_engine(db_url)
        self.heartbeat_seconds = heartbeat_seconds
        self.journal = journal
        self.run_id: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, summary: RunSummary) -> None:
        runs.start_run(
            bind=self.engine,
            run_id=summary.run_id,
            mode=summary.mode,
            as_of=summary.as_of,
            host=socket.gethostname(),
            pid=os.getpid(),
            heartbeat_seconds=self.heartbeat_seconds,
            summary=summary.to_dict(),
            journal="on" if self.journal and not summary.dry_run else "off",
        )
        self.run_id = summary.run_id
        self._thread = threading.Thread(
            target=self._beat, name=f"tagsys-heartbeat-{summary.run_id[:8]}", daemon=True
        )
        self._thread.start()

    def phase(self, name: str) -> None:
        if self.run_id is None:
            return
        try:
            runs.beat(bind=self.engine, run_id=self.run_id, phase=name)
        except TagSysError as exc:  # the heartbeat thread keeps trying; the run goes on
            log.warning("could not record phase %s of run %s: %s", name, self.run_id, exc)

    def finish(self, summary: RunSummary) -> None:
        written = 0 if summary.dry_run else summary.rows_written
        with shielded():
            self._close(summary.status, summary, error=None, rows_written=written)

    def fail(self, summary: RunSummary, exc: BaseException) -> None:
        """Record a run that stopped on `exc`: cancelled, or failed with the error."""
        cancelled = isinstance(exc, KeyboardInterrupt) or stop_requested()
        status = "cancelled" if cancelled else "failed"
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, TagSysError | KeyboardInterrupt):
            message = f"{type(exc).__name__}: {message}"
        if cancelled and not isinstance(exc, RunCancelled):
            message = f"stopped on request ({message})"
        summary.error = message
        summary.final_status = status
        with shielded():
            self._close_counted(status, summary, error=message)

    def _close(
        self,
        status: str,
        summary: RunSummary,
        *,
        error: str | None,
        rows_written: int | None = None,
        count: Callable[[sa.Connection], int] | None = None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            if self.run_id is not None:
                self._record_end(status, summary, error, rows_written, count)
        finally:
            self.engine.dispose()

    def _record_end(
        self,
        status: str,
        summary: RunSummary,
        error: str | None,
        rows_written: int | None,
        count: Callable[[sa.Connection], int] | None,
    ) -> None:
        """The end, once: with `rows_written`, or with `count` made once the end is recorded
        (without it if the store cannot make it)."""
        run_id, recorded = summary.run_id, summary.to_dict()
        if count is not None:
            try:
                _retry(
                    lambda: runs.finish_counted(
                        engine=self.engine,
                        run_id=run_id,
                        status=status,
                        summary=recorded,
                        error=error,
                        count_written=count,
                    )
                )
                return
            except StoreError as exc:
                log.warning("recording the run's end without the rows it wrote (%s)", exc)
        _retry(
            lambda: runs.finish_run(
                bind=self.engine,
                run_id=run_id,
                status=status,
                summary=recorded,
                error=error,
                rows_written=rows_written,
            )
        )

    def _close_counted(self, status: str, summary: RunSummary, *, error: str | None) -> None:
        """End a run that stopped midway, recording the rows it committed: its journal entries
        (deleted rows included), or without a journal the rows that carry its write time."""
        if summary.dry_run or summary.written_at is None:
            self._close(status, summary, error=error, rows_written=0)
            return
        stamp, run_id = summary.written_at, summary.run_id

        def count(conn: sa.Connection) -> int:
            if self.journal:
                return journal.count_entries(bind=conn, run_id=run_id)
            query = sa.select(sa.func.count()).where(user_tags.c.updated_time == stamp)
            return int(conn.execute(query).scalar() or 0)

        self._close(status, summary, error=error, count=count)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                assert self.run_id is not None
                if not runs.beat(bind=self.engine, run_id=self.run_id):
                    return
            except Exception as exc:  # a missed beat is not the run's failure
                log.warning("heartbeat of run %s failed: %s", self.run_id, exc)


def _retry(fn: Callable[[], T], seconds: float = FINISH_RETRY_SECONDS) -> T:
    deadline = time.monotonic() + seconds
    delay = 0.2
    while True:
        try:
            return fn()
        except StoreError as exc:
            if time.monotonic() + delay > deadline:
                log.error("the store did not answer while recording the run's end: %s", exc)
                raise
            log.warning("the store did not answer (%s); retrying", exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
