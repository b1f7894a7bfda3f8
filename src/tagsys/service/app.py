"""The FastAPI application: routes, error shape, request ids, metrics, and the job runner's
life (started with the app, stopped with it)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tagsys.service.console import install_console
from tagsys.service.context import ServiceContext
from tagsys.service.errors import install_error_handlers
from tagsys.service.observability import install_request_middleware
from tagsys.service.routes import (
    audiences,
    health,
    history,
    management,
    preview,
    rules,
    runs,
    schedules,
    tags,
    tasks,
    users,
)
from tagsys.service.security import configured_keys

log = logging.getLogger(__name__)

DESCRIPTION = """Rule-driven user tagging: trigger tag computations as asynchronous jobs,
follow them, and read the tags. With an API key configured, every endpoint except
`/health` and `/metrics` needs it (`X-API-Key` header or `Authorization: Bearer`).
The web console, a client of this API, is at `/ui`."""


def create_app(ctx: ServiceContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warm(ctx)
        ctx.runner.start()
        log.info("tagsys service %s ready (%d job workers)", ctx.instance, ctx.runner.workers)
        try:
            yield
        finally:
            ctx.runner.stop()
            ctx.engine.dispose()

    app = FastAPI(title="tagsys", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.ctx = ctx
    app.state.keys = configured_keys(ctx.settings)
    install_error_handlers(app)
    install_request_middleware(app, ctx.metrics)
    # management after tags: its /api/v1/tags/{tag_id} must not shadow /available or /stats
    for module in (
        health,
        tags,
        tasks,
        runs,
        users,
        schedules,
        history,
        management,
        preview,
        audiences,
        rules,
    ):
        app.include_router(module.router)
    install_console(app)
    return app


def warm(ctx: ServiceContext) -> None:
    """Start Spark and discover the lake and the task classes before the first job."""
    ctx.api.spark  # noqa: B018  (starting the session is the point)
    ctx.api.registry  # noqa: B018
    ctx.api.catalog.schema()
    threading.Thread(
        target=_warm_audiences, args=(ctx,), name="tagsys-warm-audiences", daemon=True
    ).start()


def _warm_audiences(ctx: ServiceContext) -> None:
    """Load the audience index and the id map in the background: the first count or export
    then answers from memory (at 10M users the id map takes a minute to read)."""
    try:
        ctx.api.audiences.reader.snapshot()
        ctx.api.audiences.ids.refresh()
    except Exception as exc:  # a cold cache is slower, not wrong
        log.warning("audience index not preloaded: %s", exc)
