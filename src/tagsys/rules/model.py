"""The rule language as typed data: groups (AND/OR/NOT) of conditions, nesting to any depth.

This is the stored JSON format of `tag_rules.rule_conditions` (the seed's flat format is the
one-level case). The model is structural only; `validate.py` checks a rule against the lake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
)

from tagsys.lake.schema import VALUE_KINDS, LakeColumn, ValueKind

Logic = Literal["AND", "OR", "NOT"]
Operator = Literal[
    "=",
    "!=",
    ">",
    "<",
    ">=",
    "<=",
    "in",
    "not_in",
    "is_null",
    "is_not_null",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "in_range",
    "not_in_range",
    "recent_days",
    "days_ago",
    "days_ago_between",
    "date_between",
]
LOGICS: tuple[Logic, ...] = get_args(Logic)
OPERATORS: tuple[Operator, ...] = get_args(Operator)

_ALL: frozenset[ValueKind] = frozenset(VALUE_KINDS)
_ORDERED: frozenset[ValueKind] = frozenset({"number", "string", "date"})
_TEXT: frozenset[ValueKind] = frozenset({"string"})
_DATE: frozenset[ValueKind] = frozenset({"date"})
_RANGED: frozenset[ValueKind] = frozenset({"number", "date"})

#: The column kinds each operator applies to.
OPERATOR_KINDS: Mapping[Operator, frozenset[ValueKind]] = {
    "=": _ALL,
    "!=": _ALL,
    ">": _ORDERED,
    "<": _ORDERED,
    ">=": _ORDERED,
    "<=": _ORDERED,
    "in": _ALL,
    "not_in": _ALL,
    "is_null": _ALL,
    "is_not_null": _ALL,
    "contains": _TEXT,
    "not_contains": _TEXT,
    "starts_with": _TEXT,
    "ends_with": _TEXT,
    "in_range": _RANGED,
    "not_in_range": _RANGED,
    "recent_days": _DATE,
    "days_ago": _DATE,
    "days_ago_between": _DATE,
    "date_between": _DATE,
}

#: Operators whose result depends on the run's as_of date.
RELATIVE_DATE_OPERATORS: frozenset[Operator] = frozenset(
    {"recent_days", "days_ago", "days_ago_between"}
)

GROUP_KEYS: tuple[str, ...] = ("logic", "conditions")
CONDITION_KEYS: tuple[str, ...] = ("field", "operator", "value", "type")

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
RuleValue = Scalar | list[Scalar]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_iso_date(text: object) -> date | None:
    """`YYYY-MM-DD` text as a date, or None when it is not exactly that."""
    if not isinstance(text, str) or not _ISO_DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


class Condition(BaseModel):
    """One test on one lake column: `field operator value`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: StrictStr = Field(description="Column name, or `table.column` when ambiguous.")
    operator: Operator
    value: RuleValue | None = Field(
        default=None, description="Literal(s) to compare with; absent for is_null/is_not_null."
    )
    type: ValueKind | None = Field(
        default=None, description="Optional; when given it must match the column's kind."
    )


def _node_tag(node: Any) -> str:
    if isinstance(node, Mapping):
        return "group" if "logic" in node or "conditions" in node else "condition"
    return "group" if isinstance(node, Group) else "condition"


Node = Annotated[
    Annotated[Condition, Tag("condition")] | Annotated["Group", Tag("group")],
    Discriminator(_node_tag),
]


class Group(BaseModel):
    """Conditions and nested groups combined by AND, OR or NOT (= not all of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    logic: Logic
    conditions: list[Node] = Field(min_length=1)


Group.model_rebuild()

#: A rule is a group.
Rule = Group


def reads_text_as_date(condition: Condition, column: LakeColumn) -> bool:
    """A `date` condition on a text column: the stored text is parsed (SPEC 3)."""
    return condition.type == "date" and column.kind == "string"


def condition_kind(condition: Condition, column: LakeColumn) -> ValueKind | None:
    """How the condition compares: the column's kind, or `date` for dates stored as text."""
    return "date" if reads_text_as_date(condition, column) else column.kind


def iter_conditions(group: Group) -> list[Condition]:
    """Every condition of a group, depth first, in rule order."""
    found: list[Condition] = []
    for node in group.conditions:
        found.extend(iter_conditions(node) if isinstance(node, Group) else [node])
    return found
