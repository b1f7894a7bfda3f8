"""What rule editors need besides preview: the operators, the lake's fields, and checking
rules against the lake without saving them (problems at their locations, 200 either way)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from tagsys.rules.vocabulary import check_rules, operators, rule_fields
from tagsys.service.context import ServiceContext, context_of
from tagsys.service.models import ERROR_RESPONSES
from tagsys.service.security import caller

router = APIRouter(prefix="/api/v1", tags=["management"], responses=ERROR_RESPONSES)

MAX_RULES = 100


class ValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Any] = Field(
        max_length=MAX_RULES, description="a tag's rules (OR-ed), each a group, as saved"
    )


@router.get("/rules/operators", summary="Operators: the column kinds each applies to, its value")
def list_operators(_: str | None = Depends(caller)) -> dict[str, Any]:
    return {"success": True, "operators": operators()}


@router.get("/lake/fields", summary="The lake's columns as rules name them, with their kinds")
def list_fields(
    ctx: ServiceContext = Depends(context_of), _: str | None = Depends(caller)
) -> dict[str, Any]:
    fields = rule_fields(ctx.api.catalog.schema())
    return {"success": True, "fields": [f.view() for f in fields]}


@router.post("/rules/validate", summary="Problems of unsaved rules, each at its location")
def validate(
    body: ValidateRequest,
    ctx: ServiceContext = Depends(context_of),
    _: str | None = Depends(caller),
) -> dict[str, Any]:
    """Errors make an active tag unsaveable; warnings do not. Locations are those a save
    would answer with (`rules[0].conditions[1].value`)."""
    problems = [
        {"location": where, "problem": p.message, "severity": p.severity}
        for where, p in check_rules(body.rules, ctx.api.catalog.schema())
    ]
    valid = not any(p["severity"] == "error" for p in problems)
    return {"success": True, "valid": valid, "problems": problems}
