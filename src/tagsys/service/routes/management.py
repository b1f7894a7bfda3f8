"""Tag management: categories, tags, their rules, versions, revert and the audit log.

Edits are optimistically locked: send the version you read (`If-Match: "3"` or
`expected_version`); a concurrent edit answers 409 with the current version."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tagsys.management.definition import TagSpec, TagState
from tagsys.management.manager import Actor, TagManager
from tagsys.service.context import ServiceContext, context_of
from tagsys.service.errors import ApiError
from tagsys.service.models import (
    ERROR_RESPONSES,
    MAX_ID,
    MAX_PAGE,
    encode_cursor,
    number_cursor,
    whole_number,
)
from tagsys.service.security import caller
from tagsys.store.versions import AuditRecord, VersionRecord

router = APIRouter(prefix="/api/v1", tags=["management"], responses=ERROR_RESPONSES)

TagId = Path(ge=1, le=MAX_ID)
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
CategoryName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)
]
Comment = Annotated[str, StringConstraints(max_length=2000)]
Version = Annotated[int, Field(ge=0, le=MAX_ID)]
Rules = list[dict[str, Any]]


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CategoryName
    description: str | None = None
    active: bool = True
    comment: Comment | None = None


class TagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    category: CategoryName
    description: str | None = None
    active: bool = Field(True, description="false: a draft, saved even if its rules have problems")
    rules: Rules = Field(default_factory=list, description="rules (OR-ed), each a group")
    comment: Comment | None = None


class TagUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    category: CategoryName | None = None
    description: str | None = None
    active: bool | None = None
    rules: Rules | None = None
    comment: Comment | None = None
    expected_version: Version | None = Field(None, description="the version you edited")

    def changes(self) -> dict[str, Any]:
        fields = self.model_fields_set - {"comment", "expected_version"}
        changes = {name: getattr(self, name) for name in fields}
        nulls = [n for n in ("name", "category", "active", "rules") if changes.get(n, 0) is None]
        if nulls:
            raise ApiError(
                422,
                "invalid_request",
                f"{', '.join(nulls)} cannot be null",
                [{"location": n, "problem": "cannot be null"} for n in nulls],
            )
        return changes


class RulesPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Rules
    comment: Comment | None = None
    expected_version: Version | None = None


class Revert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Version
    comment: Comment | None = None
    expected_version: Version | None = None


def manager_of(ctx: ServiceContext = Depends(context_of)) -> TagManager:
    return TagManager(ctx.engine, ctx.api.catalog.schema)


def actor_of(name: str | None, comment: str | None = None) -> Actor:
    return Actor(name or "anonymous", comment)


def expected(body_version: int | None, if_match: str | None) -> int | None:
    """The version the client edited: the body's `expected_version`, else `If-Match`."""
    if body_version is not None or if_match is None:
        return body_version
    version = whole_number(if_match.strip().removeprefix("W/").strip('"'), MAX_ID)
    if version is None:
        raise ApiError(
            422,
            "invalid_request",
            'If-Match must be a tag version as its ETag gives it, e.g. "3"',
            [{"location": "header.If-Match", "problem": "not a version"}],
        )
    return version


def tag_response(state: TagState, status: int = 200) -> JSONResponse:
    return JSONResponse(
        {"success": True, "tag": state.view()},
        status_code=status,
        headers={"ETag": f'"{state.version}"'},
    )


def version_view(v: VersionRecord) -> dict[str, Any]:
    return {
        "tag_id": v.tag_id,
        "version": v.version,
        "action": v.action,
        "actor": v.actor,
        "created_at": v.created_at.isoformat(),
        "comment": v.comment,
        "definition": v.definition,
    }


def audit_view(a: AuditRecord) -> dict[str, Any]:
    return {
        "audit_id": a.audit_id,
        "created_at": a.created_at.isoformat(),
        "actor": a.actor,
        "action": a.action,
        "entity": a.entity,
        "entity_id": a.entity_id,
        "version": a.version,
        "comment": a.comment,
        "summary": a.summary,
    }


Manager = Annotated[TagManager, Depends(manager_of)]
Caller = Annotated[str | None, Depends(caller)]
IfMatch = Annotated[str | None, Header(max_length=40)]


@router.get("/categories", summary="Tag categories")
def list_categories(manager: Manager, _: Caller) -> dict[str, Any]:
    return {"success": True, "categories": manager.list_categories()}


@router.post("/categories", status_code=201, summary="Create a category")
def create_category(body: CategoryCreate, manager: Manager, who: Caller) -> dict[str, Any]:
    actor = actor_of(who, body.comment)
    category = manager.create_category(actor, body.name, body.description, body.active)
    return {"success": True, "category": category}


@router.get("/tags", summary="Tag definitions with their rules and versions")
def list_tags(
    manager: Manager,
    _: Caller,
    include_deleted: bool = Query(False, description="also soft-deleted tags"),
) -> dict[str, Any]:
    tags = [t.view() for t in manager.list_tags(include_deleted)]
    return {"success": True, "count": len(tags), "tags": tags}


@router.post("/tags", status_code=201, summary="Create a tag (version 1)")
def create_tag(body: TagCreate, manager: Manager, who: Caller) -> JSONResponse:
    spec = TagSpec(body.name, body.category, body.description, body.active).changed(
        rules=body.rules
    )
    return tag_response(manager.create_tag(actor_of(who, body.comment), spec), 201)


@router.get("/tags/{tag_id:int}", summary="One tag (ETag: its version)")
def get_tag(manager: Manager, _: Caller, tag_id: int = TagId) -> JSONResponse:
    return tag_response(manager.get_tag(tag_id))


@router.patch("/tags/{tag_id:int}", summary="Change a tag's fields (a new version)")
def update_tag(
    body: TagUpdate,
    manager: Manager,
    who: Caller,
    tag_id: int = TagId,
    if_match: IfMatch = None,
) -> JSONResponse:
    version = expected(body.expected_version, if_match)
    state = manager.update_tag(actor_of(who, body.comment), tag_id, body.changes(), version)
    return tag_response(state)


@router.delete("/tags/{tag_id:int}", summary="Soft-delete a tag (the next task-all removes it)")
def delete_tag(
    manager: Manager,
    who: Caller,
    tag_id: int = TagId,
    comment: str | None = Query(None, max_length=2000),
    expected_version: int | None = Query(None, ge=0, le=MAX_ID),
    if_match: IfMatch = None,
) -> JSONResponse:
    version = expected(expected_version, if_match)
    return tag_response(manager.delete_tag(actor_of(who, comment), tag_id, version))


@router.get("/tags/{tag_id:int}/rules", summary="A tag's rules")
def get_rules(manager: Manager, _: Caller, tag_id: int = TagId) -> JSONResponse:
    state = manager.get_tag(tag_id)
    body = {
        "success": True,
        "tag_id": tag_id,
        "version": state.version,
        "rules": state.view()["rules"],
    }
    return JSONResponse(body, headers={"ETag": f'"{state.version}"'})


@router.put("/tags/{tag_id:int}/rules", summary="Replace a tag's rules (a new version)")
def put_rules(
    body: RulesPut,
    manager: Manager,
    who: Caller,
    tag_id: int = TagId,
    if_match: IfMatch = None,
) -> JSONResponse:
    version = expected(body.expected_version, if_match)
    actor = actor_of(who, body.comment)
    return tag_response(manager.update_tag(actor, tag_id, {"rules": body.rules}, version))


@router.get("/tags/{tag_id:int}/versions", summary="A tag's versions, oldest first")
def list_versions(manager: Manager, _: Caller, tag_id: int = TagId) -> dict[str, Any]:
    found = [version_view(v) for v in manager.versions(tag_id)]
    return {"success": True, "tag_id": tag_id, "versions": found}


@router.get("/tags/{tag_id:int}/versions/{version:int}", summary="One version of a tag")
def get_version(
    manager: Manager, _: Caller, tag_id: int = TagId, version: int = Path(ge=0, le=MAX_ID)
) -> dict[str, Any]:
    return {"success": True, "version": version_view(manager.version(tag_id, version))}


@router.get("/tags/{tag_id:int}/diff", summary="What changed between two versions of a tag")
def diff_versions(
    manager: Manager,
    _: Caller,
    tag_id: int = TagId,
    from_version: int = Query(alias="from", ge=0, le=MAX_ID),
    to_version: int = Query(alias="to", ge=0, le=MAX_ID),
) -> dict[str, Any]:
    changes = manager.diff(tag_id, from_version, to_version)
    return {
        "success": True,
        "tag_id": tag_id,
        "from": from_version,
        "to": to_version,
        "changes": [c.view() for c in changes],
    }


@router.post("/tags/{tag_id:int}/revert", summary="Make an earlier version current (a new version)")
def revert(
    body: Revert,
    manager: Manager,
    who: Caller,
    tag_id: int = TagId,
    if_match: IfMatch = None,
) -> JSONResponse:
    version = expected(body.expected_version, if_match)
    state = manager.revert(actor_of(who, body.comment), tag_id, body.version, version)
    return tag_response(state)


@router.get("/audit", summary="Every management change, newest first (cursor-paginated)")
def audit(
    manager: Manager,
    _: Caller,
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=512),
) -> dict[str, Any]:
    entries = manager.audit(limit, number_cursor(cursor))
    last = entries[-1] if len(entries) == limit else None
    return {
        "success": True,
        "entries": [audit_view(a) for a in entries],
        "next_cursor": encode_cursor(str(last.audit_id)) if last else None,
    }
