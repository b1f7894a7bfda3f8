"""What every route and the job runner share: settings, the API (one SparkSession), the
store engine and this instance's name."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import Request

from tagsys.service.jobs import JobRunner
from tagsys.service.observability import Metrics, StoreCollector
from tagsys.service.scheduler import fire_due
from tagsys.store import jobs as store_jobs
from tagsys.store import runs as store_runs
from tagsys.store.db import create_store_engine

if TYPE_CHECKING:
    from tagsys.api import TagSystemAPI
    from tagsys.settings import Settings

log = logging.getLogger(__name__)
INDEX_CHECK_SECONDS = 10.0
FAIR_SCHEDULING = {"spark.scheduler.mode": "FAIR"}
"""Jobs share the session's executors fairly: a small job is not stuck behind a large one."""


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class ServiceContext:
    settings: Settings
    api: TagSystemAPI
    engine: sa.Engine
    instance: str = field(default_factory=instance_name)
    metrics: Metrics = field(init=False)
    runner: JobRunner = field(init=False)
    _index_checked: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.metrics = Metrics(StoreCollector(self._store_figures))
        self.runner = JobRunner(
            self.api,
            self.engine,
            self.instance,
            self.metrics,
            workers=self.settings.job_workers,
            heartbeat_seconds=self.settings.job_heartbeat_seconds,
            today=self.settings.today,
            on_tick=self._tick,
        )

    def enqueue(self, request: Mapping[str, Any], actor: str | None) -> store_jobs.JobRecord:
        """Queue a job and wake a worker; past `TAGSYS_JOB_QUEUE_LIMIT` waiting jobs,
        QueueFullError (a 429) and nothing is queued."""
        job = store_jobs.queue_job(
            bind=self.engine,
            limit=self.settings.job_queue_limit,
            job_id=str(uuid.uuid4()),
            request=request,
            environment=self.settings.env,
            actor=actor,
        )
        self.runner.wake()
        return job

    def _tick(self) -> None:
        if fire_due(self.engine, self.settings.env):
            self.runner.wake()
        self._catch_up_index()

    def _catch_up_index(self) -> None:
        """Take in runs that finished elsewhere (a CLI, a killed process) every few seconds."""
        now = time.monotonic()
        if not self.settings.audience_index or now - self._index_checked < INDEX_CHECK_SECONDS:
            return
        self._index_checked = now
        self.api.refresh_index()

    def _store_figures(self) -> tuple[dict[str, int], dict[int, tuple[str, int]]]:
        jobs = store_jobs.count_jobs_by_status(bind=self.engine)
        tags = store_runs.latest_tag_counts(bind=self.engine)
        return jobs, {t.tag_id: (t.tag_name, t.users) for t in tags.values()}


def open_context(settings: Settings, api: TagSystemAPI | None = None) -> ServiceContext:
    """Migrate-check the store and warm Spark: the first job must not pay for either."""
    from tagsys.api import TagSystemAPI

    if api is None:
        conf = {**FAIR_SCHEDULING, **settings.spark_conf}
        api = TagSystemAPI(settings=settings.model_copy(update={"spark_conf": conf}))
    api.ensure_store()
    return ServiceContext(
        settings=settings, api=api, engine=create_store_engine(settings.database_url)
    )


def context_of(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx
