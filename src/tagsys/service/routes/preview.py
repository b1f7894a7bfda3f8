"""Previewing an unsaved rule on the service's warm SparkSession, under a time limit."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from tagsys.management.preview import MAX_SAMPLE
from tagsys.service.context import ServiceContext, context_of
from tagsys.service.models import ERROR_RESPONSES, MAX_ID
from tagsys.service.security import caller

router = APIRouter(prefix="/api/v1/rules", tags=["management"], responses=ERROR_RESPONSES)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] = Field(description="one rule (a group), as saved in a tag's rules")
    as_of: date | None = Field(None, description="business date (default: today)")
    tag_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="compare with this tag's stored users"
    )
    sample_size: int = Field(20, ge=0, le=MAX_SAMPLE, description="matching user ids returned")
    timeout_seconds: float | None = Field(
        None, gt=0, le=600, description="time limit (default TAGSYS_PREVIEW_TIMEOUT_SECONDS, 30)"
    )


@router.post(
    "/preview",
    summary="Who an unsaved rule would tag: count, sample, per condition, added/removed",
    responses={504: {"description": "the preview ran past its time limit and was stopped"}},
)
def preview(
    body: PreviewRequest,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    result = ctx.api.preview_rule(
        body.rule,
        body.as_of,
        tag_id=body.tag_id,
        sample=body.sample_size,
        timeout=body.timeout_seconds,
    )
    return {"success": True, "preview": result.view()}
