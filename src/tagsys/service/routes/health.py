"""`GET /health` (the seed's, open) and `GET /metrics` (Prometheus, open)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tagsys.errors import TagSysError
from tagsys.service.context import ServiceContext, context_of
from tagsys.store.db import transaction

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the service able to take and run jobs")
def health(
    deep: bool = Query(False, description="also check the lake and the rules (slower)"),
    ctx: ServiceContext = Depends(context_of),
) -> JSONResponse:
    checks: dict[str, Any] = {"store": _store_check(ctx), "jobs": _jobs_check(ctx)}
    if deep:
        report = ctx.api.health()
        checks.update({c.name: {"ok": c.ok, "detail": c.detail} for c in report.checks})
    ok = all(c["ok"] for c in checks.values())
    body = {
        "success": ok,
        "status": "healthy" if ok else "unhealthy",
        "environment": ctx.settings.env,
        "instance": ctx.instance,
        "timestamp": datetime.now(UTC).isoformat(),
        "checks": checks,
    }
    return JSONResponse(body, status_code=200 if ok else 503)


def _store_check(ctx: ServiceContext) -> dict[str, Any]:
    try:
        with transaction(ctx.engine) as conn:
            conn.execute(sa.text("SELECT 1"))
    except TagSysError as exc:
        return {"ok": False, "detail": str(exc)}
    return {"ok": True, "detail": "reachable"}


def _jobs_check(ctx: ServiceContext) -> dict[str, Any]:
    alive = ctx.runner.alive()
    detail = (
        f"{ctx.runner.busy} of {ctx.runner.workers} workers busy"
        if alive
        else "job workers stopped"
    )
    return {"ok": alive, "detail": detail}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(ctx: ServiceContext = Depends(context_of)) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
