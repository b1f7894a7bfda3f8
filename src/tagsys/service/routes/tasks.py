"""Jobs (the seed calls them tasks): status, list, cancel."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from tagsys.service.context import ServiceContext, context_of
from tagsys.service.errors import ApiError
from tagsys.service.models import ERROR_RESPONSES, MAX_PAGE, JobStatus, encode_cursor, time_cursor
from tagsys.service.security import caller
from tagsys.store import jobs as store_jobs

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"], responses=ERROR_RESPONSES)

TaskId = Path(min_length=1, max_length=64, description="the task_id the trigger returned")
JobStatusName = Literal["submitted", "running", "completed", "failed", "cancelled"]


def _job(ctx: ServiceContext, task_id: str) -> store_jobs.JobRecord:
    job = store_jobs.get_job(bind=ctx.engine, job_id=task_id)
    if job is None:
        raise ApiError(404, "not_found", f"no task with id '{task_id}'")
    return job


@router.get("/{task_id}/status", summary="A task's status and, when done, its result")
def status(
    task_id: str = TaskId,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    job = _job(ctx, task_id)
    return {
        "success": True,
        "task_id": job.job_id,
        "status": JobStatus.of(job).model_dump(mode="json"),
    }


@router.get("", summary="Tasks, newest first (cursor-paginated)")
def list_tasks(
    status: JobStatusName | None = Query(None, description="only tasks in this status"),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=512),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    jobs = store_jobs.list_jobs(
        bind=ctx.engine, status=status, limit=limit, after=time_cursor(cursor)
    )
    tasks = [JobStatus.of(j).model_dump(mode="json") for j in jobs]
    last = jobs[-1] if len(jobs) == limit else None
    next_cursor = encode_cursor(last.submitted_at.isoformat(), last.job_id) if last else None
    return {"success": True, "count": len(tasks), "tasks": tasks, "next_cursor": next_cursor}


@router.post("/{task_id}/cancel", status_code=202, summary="Cancel a submitted or running task")
def cancel(
    task_id: str = TaskId,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> JSONResponse:
    before = _job(ctx, task_id)
    if before.final:
        raise ApiError(
            409,
            "already_finished",
            f"task {task_id} is already {before.status}; only submitted or running tasks can be "
            "cancelled",
            {"status": before.status},
        )
    job = ctx.runner.cancel(task_id) or before
    message = (
        "cancelled"
        if job.status == "cancelled"
        else "cancellation requested: the run stops and is recorded as cancelled"
    )
    body = {
        "success": True,
        "task_id": task_id,
        "message": message,
        "status": JobStatus.of(job).model_dump(mode="json"),
    }
    return JSONResponse(body, status_code=202)
