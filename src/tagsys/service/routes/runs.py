"""Runs (whatever started them: CLI, Glue, a job): their records and summaries."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from tagsys.service.context import ServiceContext, context_of
from tagsys.service.errors import ApiError
from tagsys.service.models import ERROR_RESPONSES, MAX_PAGE, encode_cursor, time_cursor
from tagsys.service.security import caller
from tagsys.store import jobs as store_jobs
from tagsys.store import runs as store_runs
from tagsys.store.runs import RunRecord

router = APIRouter(prefix="/api/v1/runs", tags=["runs"], responses=ERROR_RESPONSES)

RunStatusName = Literal["running", "completed", "failed", "cancelled"]


def run_view(run: RunRecord, *, with_summary: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "run_id": run.run_id,
        "mode": run.mode,
        "as_of": run.as_of.isoformat(),
        "status": run.effective_status(),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "phase": run.phase,
        "host": run.host,
        "pid": run.pid,
        "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "rows_written": run.rows_written,
        "error": run.error,
    }
    if with_summary:
        view["summary"] = run.summary
    return view


@router.get("", summary="Runs, newest first (cursor-paginated)")
def list_runs(
    status: RunStatusName | None = Query(None),
    mode: str | None = Query(None, max_length=32),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=512),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    runs = store_runs.list_runs(
        bind=ctx.engine, limit=limit, mode=mode, status=status, after=time_cursor(cursor)
    )
    last = runs[-1] if len(runs) == limit else None
    return {
        "success": True,
        "count": len(runs),
        "runs": [run_view(r, with_summary=False) for r in runs],
        "next_cursor": encode_cursor(last.started_at.isoformat(), last.run_id) if last else None,
    }


@router.get("/{run_id}", summary="One run with its summary")
def get_run(
    run_id: str = Path(min_length=1, max_length=64),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    run = store_runs.get_run(bind=ctx.engine, run_id=run_id)
    if run is None:
        raise ApiError(404, "not_found", f"no run with id '{run_id}'")
    return {"success": True, "run": run_view(run, with_summary=True)}


@router.get(
    "/{run_id}/progress", summary="A run's phase and, while Spark works on it, its progress"
)
def progress(
    run_id: str = Path(min_length=1, max_length=64),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    """`spark` counts the tasks of the run's Spark jobs going on now (percent of them done);
    it is null when this instance runs no Spark job of the run (between phases, a run of
    another instance or process, a finished run). A run a job has named but not yet begun
    is `starting` (or the job's own end, if it ended first)."""
    run = store_runs.get_run(bind=ctx.engine, run_id=run_id)
    if run is None:
        return _not_started(ctx, run_id)
    found = ctx.api.run_progress(run_id) if run.finished_at is None else None
    return {
        "success": True,
        "run_id": run_id,
        "status": run.effective_status(),
        "phase": run.phase,
        "spark": found.view() if found else None,
    }


def _not_started(ctx: ServiceContext, run_id: str) -> dict[str, Any]:
    """A job names its run id before the run records itself: polling it then is no error."""
    job = store_jobs.job_of_run(bind=ctx.engine, run_id=run_id)
    if job is None:
        raise ApiError(404, "not_found", f"no run with id '{run_id}'")
    status = job.status if job.final else "starting"
    return {"success": True, "run_id": run_id, "status": status, "phase": None, "spark": None}
