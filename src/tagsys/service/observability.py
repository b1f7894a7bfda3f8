"""Request ids, JSON logs and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tagsys.service.errors import error_body

request_id: ContextVar[str] = ContextVar("request_id", default="-")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdFilter(logging.Filter):
    """Puts the current request (or job) id on every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id.get()),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for noisy in ("py4j", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Metrics:
    """The service's metrics; store-backed figures are read at scrape time by `collector`."""

    def __init__(self, collector: Collector) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "tagsys_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.run_duration = Histogram(
            "tagsys_run_duration_seconds",
            "Duration of runs executed by this instance's jobs",
            ["mode", "status"],
            registry=self.registry,
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.rows_written = Histogram(
            "tagsys_run_rows_written",
            "Rows inserted or updated per run executed by this instance's jobs",
            ["mode"],
            registry=self.registry,
            buckets=(0, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000),
        )
        self.jobs_finished = Counter(
            "tagsys_jobs_finished",
            "Jobs this instance finished, by final status",
            ["status"],
            registry=self.registry,
        )
        self.registry.register(collector)


class StoreCollector(Collector):
    """Jobs by status, queue depth and the latest per-tag match counts, read from the store
    when scraped (so every instance reports the same shared figures)."""

    def __init__(self, read: Callable[[], tuple[dict[str, int], dict[int, tuple[str, int]]]]):
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            jobs, tags = self._read()
        except Exception as exc:  # a scrape must not fail because the store is down
            logging.getLogger(__name__).warning("metrics: cannot read the store: %s", exc)
            return
        by_status = GaugeMetricFamily(
            "tagsys_jobs", "Jobs in the store by status", labels=["status"]
        )
        for status, count in jobs.items():
            by_status.add_metric([status], count)
        yield by_status
        yield GaugeMetricFamily(
            "tagsys_job_queue_depth",
            "Jobs submitted and not yet claimed",
            value=jobs.get("submitted", 0),
        )
        matched = GaugeMetricFamily(
            "tagsys_tag_users",
            "Users matched per tag by the latest completed run over all users that computed it",
            labels=["tag_id", "tag_name"],
        )
        for tag_id, (name, count) in sorted(tags.items()):
            matched.add_metric([str(tag_id), name], count)
        yield matched


def install_request_middleware(app: FastAPI, metrics: Metrics) -> None:
    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get("X-Request-ID", "")
        rid = given if _VALID_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            logging.getLogger(__name__).exception(
                "unexpected error answering %s %s", request.method, request.url.path
            )
            response = JSONResponse(
                error_body(
                    "internal_error",
                    "unexpected error; the service log has the details under this "
                    "response's request id",
                ),
                status_code=500,
            )
        finally:
            request_id.reset(token)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, template, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        response.headers["X-Request-ID"] = rid
        return response
