"""Schedules: a cron expression in TAGSYS_TIMEZONE and a run request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tagsys.errors import UsageError
from tagsys.service.context import ServiceContext, context_of
from tagsys.service.errors import ApiError
from tagsys.service.models import ERROR_RESPONSES, MAX_ID
from tagsys.service.requests import TriggerRequest
from tagsys.service.routes.tags import check_tag_ids, refuse_nulls
from tagsys.service.scheduler import check_cron, next_fire
from tagsys.service.security import caller
from tagsys.store import schedules as store_schedules
from tagsys.store.schedules import ScheduleRecord

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], responses=ERROR_RESPONSES)

ScheduleId = Path(ge=1, le=MAX_ID)


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\w.-]+$")]
    cron: Annotated[str, StringConstraints(min_length=9, max_length=100)] = Field(
        description="five fields: minute hour day-of-month month day-of-week",
        examples=["0 2 * * *"],
    )
    request: TriggerRequest = Field(description="what to run, as for POST /api/v1/tags/trigger")


def schedule_view(s: ScheduleRecord) -> dict[str, Any]:
    return {
        "schedule_id": s.schedule_id,
        "name": s.name,
        "cron": s.cron,
        "timezone": s.timezone,
        "request": s.request,
        "active": s.is_active,
        "created_at": s.created_at.isoformat(),
        "created_by": s.created_by,
        "next_fire_at": s.next_fire_at.isoformat(),
        "last_fired_at": s.last_fired_at.isoformat() if s.last_fired_at else None,
        "last_task_id": s.last_job_id,
    }


@router.post("", status_code=201, summary="Create a schedule")
def create(
    body: ScheduleRequest,
    ctx: ServiceContext = Depends(context_of),
    actor: str | None = Depends(caller),
) -> dict[str, Any]:
    try:
        cron = check_cron(body.cron)
    except UsageError as exc:
        raise ApiError(
            422, "invalid_request", str(exc), [{"location": "cron", "problem": str(exc)}]
        ) from exc
    refuse_nulls(body.request, "request.")
    check_tag_ids(ctx, body.request.tag_ids)
    if store_schedules.find_schedule_by_name(bind=ctx.engine, name=body.name) is not None:
        raise ApiError(409, "duplicate_name", f"a schedule named '{body.name}' exists already")
    timezone = ctx.settings.timezone
    schedule = store_schedules.create_schedule(
        bind=ctx.engine,
        name=body.name,
        cron=cron,
        timezone=timezone,
        request=body.request.stored(),
        next_fire_at=next_fire(cron, timezone, datetime.now(UTC)),
        created_by=actor,
    )
    return {"success": True, "schedule": schedule_view(schedule)}


@router.get("", summary="Schedules")
def list_all(
    ctx: ServiceContext = Depends(context_of), _: str | None = Depends(caller)
) -> dict[str, Any]:
    schedules = store_schedules.list_schedules(bind=ctx.engine)
    return {"success": True, "schedules": [schedule_view(s) for s in schedules]}


@router.get("/{schedule_id}", summary="One schedule")
def get_one(
    schedule_id: int = ScheduleId,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    schedule = store_schedules.get_schedule(bind=ctx.engine, schedule_id=schedule_id)
    if schedule is None:
        raise ApiError(404, "not_found", f"no schedule with id {schedule_id}")
    return {"success": True, "schedule": schedule_view(schedule)}


@router.delete("/{schedule_id}", summary="Delete a schedule (its past jobs stay)")
def delete(
    schedule_id: int = ScheduleId,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    if not store_schedules.delete_schedule(bind=ctx.engine, schedule_id=schedule_id):
        raise ApiError(404, "not_found", f"no schedule with id {schedule_id}")
    return {"success": True, "schedule_id": schedule_id, "message": "deleted"}
