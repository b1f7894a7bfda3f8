"""A user's current tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from tagsys.service.context import ServiceContext, context_of
from tagsys.service.errors import ApiError
from tagsys.service.models import ERROR_RESPONSES
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
