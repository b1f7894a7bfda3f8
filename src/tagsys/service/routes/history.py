"""History and rollback (SPEC section 9): thin calls into TagSystemAPI's history methods."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from tagsys.errors import UsageError
from tagsys.history.rollback import RollbackStopped
from tagsys.service.context import ServiceContext, context_of
from tagsys.service.errors import ApiError, product_error
from tagsys.service.models import ERROR_RESPONSES, MAX_ID, MAX_PAGE
from tagsys.service.requests import RollbackRequest
from tagsys.service.security import caller
from tagsys.store import runs as store_runs

router = APIRouter(prefix="/api/v1", tags=["history"], responses=ERROR_RESPONSES)


@router.post("/runs/{run_id}/rollback", summary="Undo a run (a recorded, journaled run itself)")
def rollback(
    run_id: str = Path(min_length=1, max_length=64),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
    body: Annotated[RollbackRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Every row the run wrote gets its content from before the run back, except rows changed
    since (conflicts: left alone, counted, sampled). Answers when the rollback has ended."""
    if store_runs.get_run(bind=ctx.engine, run_id=run_id) is None:
        raise ApiError(404, "not_found", f"no run with id '{run_id}'")
    try:
        result = ctx.api.rollback(run_id, dry_run=body is not None and body.dry_run)
    except RollbackStopped as exc:  # midway: the error of what stopped it, with what it did
        error = product_error(exc.cause)
        error.details = {"rollback": exc.result.to_dict()}
        raise error from exc
    except UsageError as exc:  # still running, or its journal never written or pruned
        raise ApiError(409, "conflict", str(exc)) from exc
    return {"success": True, "rollback": result.to_dict()}


@router.get("/users/{user_id}/history", summary="A user's tag changes, newest first")
def user_history(
    user_id: str = Path(min_length=1, max_length=100),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=512),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    page = ctx.api.user_history(user_id, cursor=cursor, limit=limit)
    return {"success": True, **page.to_dict()}


@router.get("/tags/{tag_id}/history", summary="A tag's runs: entered, exited, members")
def tag_history(
    tag_id: int = Path(ge=1, le=MAX_ID),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=512),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    page = ctx.api.tag_history(tag_id, cursor=cursor, limit=limit)
    return {"success": True, **page.to_dict()}
