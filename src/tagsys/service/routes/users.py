"""A user's current tags, and why a tag does or does not apply to them."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Path, Query

from tagsys.service.context import ServiceContext, context_of
from tagsys.service.errors import ApiError
from tagsys.service.models import ERROR_RESPONSES, MAX_ID
from tagsys.service.security import caller
from tagsys.store import repository

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=ERROR_RESPONSES)


@router.get("/{user_id}/tags", summary="A user's tags with names and categories")
def user_tags(
    user_id: str = Path(min_length=1, max_length=100),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    row = repository.read_user_tags(bind=ctx.engine, user_ids=[user_id]).get(user_id)
    if row is None:
        raise ApiError(404, "not_found", f"user '{user_id}' has no row in user_tags (never tagged)")
    tags = [
        {
            "tag_id": tag_id,
            "tag_name": row.tag_details.get(tag_id, {}).get("tag_name"),
            "tag_category": row.tag_details.get(tag_id, {}).get("tag_category"),
        }
        for tag_id in row.tag_ids
    ]
    return {
        "success": True,
        "user_id": user_id,
        "tags": tags,
        "created_time": row.created_time.isoformat(),
        "updated_time": row.updated_time.isoformat(),
    }


@router.get(
    "/{user_id}/explain", summary="A tag's rules on the user's lake values, condition by condition"
)
def explain(
    user_id: str = Path(min_length=1, max_length=100),
    tag_id: int = Query(ge=1, le=MAX_ID, description="the tag to explain"),
    as_of: date | None = Query(None, description="business date (default: today)"),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    """Each condition with the column it read, the user's value and its result, nested as the
    rule is; `applies` is whether any active rule holds. 404 for an unknown tag."""
    return {"success": True, "explanation": ctx.api.explain_tag(tag_id, user_id, as_of).to_dict()}
