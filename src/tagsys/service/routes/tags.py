"""Tags: trigger a computation (the seed's), what is available, stats, and a tag's users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from tagsys.service.context import ServiceContext, context_of
from tagsys.service.errors import ApiError
from tagsys.service.models import ERROR_RESPONSES, MAX_ID, MAX_PAGE, decode_cursor, encode_cursor
from tagsys.service.requests import TriggerRequest
from tagsys.service.security import caller
from tagsys.store import jobs as store_jobs
from tagsys.store import repository
from tagsys.store import runs as store_runs

router = APIRouter(prefix="/api/v1/tags", tags=["tags"], responses=ERROR_RESPONSES)

SUBMITTED_MESSAGE = "标签任务已成功提交"


def known_tag_ids(ctx: ServiceContext) -> set[int]:
    """Every tag id in tag_definition (deleted and inactive ones included)."""
    return {d.tag_id for d in repository.load_all_definitions(bind=ctx.engine)}


def check_tag_ids(ctx: ServiceContext, tag_ids: list[int] | None) -> None:
    """Unknown tag ids are refused by name before anything starts."""
    if not tag_ids:
        return
    unknown = sorted(set(tag_ids) - known_tag_ids(ctx))
    if unknown:
        raise ApiError(
            422,
            "unknown_tags",
            f"unknown tag id(s) {', '.join(map(str, unknown))}: they are not in "
            "tag_definition (GET /api/v1/tags/available lists the tags)",
            [{"location": "tag_ids", "problem": f"unknown tag id {t}"} for t in unknown],
        )


def refuse_nulls(body: TriggerRequest, prefix: str) -> None:
    nulls = body.explicit_nulls()
    if nulls:
        problem = "is null: leave it out to mean all, or list the ids"
        raise ApiError(
            422,
            "invalid_request",
            f"invalid request: {', '.join(prefix + n for n in nulls)} {problem}",
            [{"location": prefix + n, "problem": problem} for n in nulls],
        )


def submit(ctx: ServiceContext, body: TriggerRequest, actor: str | None) -> store_jobs.JobRecord:
    """Persist a job (the queue is bounded) and wake a worker."""
    refuse_nulls(body, "")
    body.to_run_request(ctx.settings.today())  # the engine's own checks, before queueing
    check_tag_ids(ctx, body.tag_ids)
    return ctx.enqueue(body.stored(), actor)


@router.post(
    "/trigger",
    status_code=202,
    summary="Start a tag computation as a job (answers at once)",
)
def trigger(
    body: TriggerRequest,
    ctx: ServiceContext = Depends(context_of),
    actor: str | None = Depends(caller),
) -> JSONResponse:
    job = submit(ctx, body, actor)
    data = {
        "tag_ids": body.tag_ids,
        "user_ids": body.user_ids,
        "mode": body.mode,
        "run_mode": body.run_mode(),
        "as_of": body.as_of.isoformat() if body.as_of else None,
        "dry_run": body.dry_run,
        "environment": ctx.settings.env,
        "submitted_at": job.submitted_at.isoformat(),
    }
    content: dict[str, Any] = {
        "success": True,
        "task_id": job.job_id,
        "message": SUBMITTED_MESSAGE,
        "data": data,
        "status_url": f"/api/v1/tasks/{job.job_id}/status",
    }
    return JSONResponse(content, status_code=202, headers={"Location": content["status_url"]})


@router.get("/available", summary="Tags that can be computed, with their task classes")
def available(
    ctx: ServiceContext = Depends(context_of), _: str | None = Depends(caller)
) -> dict[str, Any]:
    infos = ctx.api.list_tasks()
    tags = [
        {
            "tag_id": i.tag_id,
            "tag_name": i.tag_name,
            "tag_category": i.tag_category,
            "task_class": i.task_class,
            "domain": i.domain,
            "source_tables": list(i.source_tables),
            "active": i.active,
            "problem": i.problem,
        }
        for i in infos
    ]
    available = {str(i.tag_id): i.task_class for i in infos if i.active}
    return {"success": True, "count": len(available), "available_tags": available, "tags": tags}


@router.get("/stats", summary="Users per tag as of the latest completed runs")
def stats(
    ctx: ServiceContext = Depends(context_of), _: str | None = Depends(caller)
) -> dict[str, Any]:
    counts = store_runs.latest_tag_counts(bind=ctx.engine)
    tags = [
        {
            "tag_id": c.tag_id,
            "tag_name": c.tag_name,
            "users": c.users,
            "run_id": c.run_id,
            "as_of_run_finished_at": c.finished_at.isoformat() if c.finished_at else None,
        }
        for c in sorted(counts.values(), key=lambda c: c.tag_id)
    ]
    return {"success": True, "tags": tags}


@router.get("/{tag_id}/users", summary="Users holding a tag, by user id (cursor-paginated)")
def tag_users(
    tag_id: int = Path(ge=1, le=MAX_ID),
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=512),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    if tag_id not in known_tag_ids(ctx):
        raise ApiError(404, "not_found", f"no tag with id {tag_id} (GET /api/v1/tags/available)")
    after = decode_cursor(cursor, 1)
    rows = repository.users_with_tag(
        bind=ctx.engine, tag_id=tag_id, after=after[0] if after else None, limit=limit
    )
    users = [
        {"user_id": r.user_id, "tag_ids": r.tag_ids, "updated_time": r.updated_time.isoformat()}
        for r in rows
    ]
    next_cursor = encode_cursor(rows[-1].user_id) if len(rows) == limit else None
    return {"success": True, "tag_id": tag_id, "users": users, "next_cursor": next_cursor}
