"""Audiences (SPEC section 10): counts, samples, exports and saved audiences, thin over
`TagSystemAPI.audiences`. Local exports stay inside TAGSYS_EXPORT_DIR; large ones run as jobs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tagsys.audiences.query import MAX_PAGE, MAX_SAMPLE, AudienceView
from tagsys.errors import AudienceError
from tagsys.lake.filesystem import is_s3
from tagsys.service.context import ServiceContext, context_of
from tagsys.service.errors import ApiError
from tagsys.service.jobs import EXPORT_MODE
from tagsys.service.models import ERROR_RESPONSES
from tagsys.service.security import caller

router = APIRouter(prefix="/api/v1/audiences", tags=["audiences"], responses=ERROR_RESPONSES)

SYNC_EXPORT_LIMIT = 100_000
"""Exports of more members than this run as a job (202 + task id)."""
Expression = Any
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
AudienceName = PathParam(min_length=1, max_length=100)


class ExpressionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: Expression = Field(
        ..., description='a tag id or name, or {"and": [...]}, {"or": [...]}, {"not": e}'
    )


class SampleBody(ExpressionBody):
    n: int = Field(10, ge=1, le=MAX_SAMPLE)
    seed: int | None = None


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: Expression = None
    name: Name | None = Field(None, description="a saved audience instead of an expression")
    path: str = Field(
        ..., min_length=1, max_length=1000, description="file under TAGSYS_EXPORT_DIR, or s3://"
    )
    format: Literal["csv", "parquet"] | None = None
    background: bool = Field(False, description="always run as a job")


class AudienceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    expression: Expression
    owner: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=2000)


class AudienceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: Expression = None
    owner: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=2000)


def _view(view: AudienceView) -> dict[str, Any]:
    data = asdict(view)
    for key in ("created_at", "updated_at", "sized_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def _index(info: Any) -> dict[str, Any]:
    data = asdict(info)
    data["published_at"] = data["published_at"].isoformat() if data["published_at"] else None
    return data


def export_target(ctx: ServiceContext, path: str) -> str:
    """s3:// as given; a local path resolved inside the export directory, never outside."""
    if is_s3(path):
        if not urlparse(path).netloc:
            raise _bad_path(
                f"export path {path!r} names no bucket: use s3://bucket/key", "no bucket"
            )
        return path
    root = ctx.settings.export_root
    try:
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            raise _bad_path(
                f"export path {path!r} leaves the export directory {root} (TAGSYS_EXPORT_DIR)",
                "outside the export directory",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as exc:  # a NUL byte, a name too long for the file system
        raise _bad_path(f"export path {path!r} cannot be a file here: {exc}", "not a path") from exc
    return str(target)


def _bad_path(message: str, problem: str) -> ApiError:
    return ApiError(422, "invalid_request", message, [{"location": "path", "problem": problem}])


@router.post("/count", summary="How many users an expression selects, per operand and per tag")
def count(
    body: ExpressionBody,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    result = ctx.api.audiences.count(body.expression)
    data = asdict(result)
    data["index"] = _index(result.index)
    return {"success": True, **data}


@router.post("/sample", summary="n random members of an expression")
def sample(
    body: SampleBody,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    page = ctx.api.audiences.sample(body.expression, body.n, body.seed)
    return {"success": True, "count": page.count, "users": page.users, "index": _index(page.index)}


@router.post("/export", summary="Write an audience's user ids to CSV or Parquet")
def export(
    body: ExportBody,
    ctx: ServiceContext = Depends(context_of),
    actor: str | None = Depends(caller),
) -> JSONResponse:
    """Answers with the file when the audience is small; larger ones (or `background`) run
    as a job: 202 and a task id to follow at /api/v1/tasks/{task_id}/status."""
    audiences = ctx.api.audiences
    if (body.expression is None) == (body.name is None):
        raise ApiError(422, "invalid_request", "give either expression or name (a saved audience)")
    expression = audiences.expression_of(body.name) if body.name else body.expression
    target = export_target(ctx, body.path)
    size = audiences.count(expression).count
    if body.background or size > SYNC_EXPORT_LIMIT:
        request = {
            "mode": EXPORT_MODE,
            "expression": expression,
            "path": target,
            "format": body.format,
        }
        job = ctx.enqueue(request, actor)
        status_url = f"/api/v1/tasks/{job.job_id}/status"
        content = {"success": True, "task_id": job.job_id, "count": size, "status_url": status_url}
        return JSONResponse(content, status_code=202, headers={"Location": status_url})
    result = audiences.export(expression, target, body.format)
    content = {
        "success": True,
        "path": result.path,
        "format": result.format,
        "rows": result.rows,
        "index": _index(result.index),
    }
    return JSONResponse(content)


@router.post("", status_code=201, summary="Save a named audience")
def save(
    body: AudienceBody,
    ctx: ServiceContext = Depends(context_of),
    actor: str | None = Depends(caller),
) -> dict[str, Any]:
    view = ctx.api.audiences.save(body.name, body.expression, body.owner or actor, body.description)
    return {"success": True, "audience": _view(view)}


@router.get("", summary="Saved audiences with their latest recorded size")
def list_saved(
    ctx: ServiceContext = Depends(context_of), _: str | None = Depends(caller)
) -> dict[str, Any]:
    return {"success": True, "audiences": [_view(v) for v in ctx.api.audiences.saved()]}


@router.get("/{name}", summary="One saved audience and its size now")
def get_saved(
    name: str = AudienceName,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    view = ctx.api.audiences.get(name)
    try:
        now = ctx.api.audiences.count(view.expression)
    except AudienceError as exc:  # e.g. a tag it names was deleted since: shown, to be fixed
        return {"success": True, "audience": _view(view), "count": None, "problem": str(exc)}
    return {
        "success": True,
        "audience": _view(view),
        "count": now.count,
        "index": _index(now.index),
    }


@router.put("/{name}", summary="Change a saved audience's expression, owner or description")
def update_saved(
    body: AudienceChange,
    name: str = AudienceName,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    view = ctx.api.audiences.update(name, body.expression, body.owner, body.description)
    return {"success": True, "audience": _view(view)}


@router.delete("/{name}", summary="Delete a saved audience and its size history")
def delete_saved(
    name: str = AudienceName,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    ctx.api.audiences.delete(name)
    return {"success": True, "deleted": name}


@router.get("/{name}/sizes", summary="A saved audience's size after each run, newest first")
def sizes(
    name: str = AudienceName,
    limit: int = Query(100, ge=1, le=1000),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    records = ctx.api.audiences.sizes(name, limit)
    return {
        "success": True,
        "sizes": [
            {
                "generation": r.generation,
                "run_id": r.run_id,
                "size": r.size,
                "recorded_at": r.recorded_at.isoformat(),
            }
            for r in records
        ],
    }


@router.get("/{name}/members", summary="A saved audience's members (cursor-paginated)")
def members(
    name: str = AudienceName,
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=32),
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    audiences = ctx.api.audiences
    page = audiences.members(audiences.expression_of(name), cursor, limit)
    return {
        "success": True,
        "users": page.users,
        "next_cursor": page.next_cursor,
        "count": page.count,
        "index": _index(page.index),
    }
