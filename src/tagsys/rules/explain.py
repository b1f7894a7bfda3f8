"""Why a rule does or does not hold for one user: every condition and group with its result.

The caller fetches the user's row (alias -> value); this module only evaluates and renders,
using the reference evaluator's semantics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from tagsys.lake.dates import parse_date_text
from tagsys.lake.schema import LakeSchema
from tagsys.rules.model import (
    Condition,
    Group,
    condition_kind,
    reads_text_as_date,
)
from tagsys.rules.reference import combine, condition_holds, lake_value
from tagsys.rules.validate import RuleInput, at, parse_rule, show


@dataclass(frozen=True)
class ConditionOutcome:
    """One condition: the column it read, the user's value there, and its result."""

    location: str
    field: str
    column: str
    operator: str
    value: Any
    actual: Any
    result: bool
    text_date: bool = False
    """The column holds text read as dates: `actual` is the raw text, `parsed` its date."""
    parsed: date | None = None


@dataclass(frozen=True)
class GroupOutcome:
    location: str
    logic: str
    result: bool
    children: tuple[ConditionOutcome | GroupOutcome, ...]


@dataclass(frozen=True)
class Explanation:
    as_of: date
    root: GroupOutcome

    @property
    def result(self) -> bool:
        return self.root.result

    def conditions(self) -> list[ConditionOutcome]:
        """Every condition's outcome, in rule order."""
        return list(_leaves(self.root))

    def render(self) -> list[str]:
        """Readable lines: the verdict, then the rule tree with each part's result."""
        verdict = "holds" if self.result else "does not hold"
        return [f"rule {verdict} (as of {self.as_of.isoformat()})", *_lines(self.root, 0)]


def explain_rule(
    rule: RuleInput, row: Mapping[str, Any], schema: LakeSchema, as_of: date
) -> Explanation:
    """Evaluate a rule on one user's row, keeping every intermediate result.

    Raises RuleValidationError if the rule is invalid (an invalid rule matches no one).
    """
    return Explanation(as_of, _group(parse_rule(rule, schema), "$", row, schema, as_of))


def _group(
    group: Group, location: str, row: Mapping[str, Any], schema: LakeSchema, as_of: date
) -> GroupOutcome:
    children: list[ConditionOutcome | GroupOutcome] = []
    for index, node in enumerate(group.conditions):
        where = at(at(location, "conditions"), index)
        if isinstance(node, Group):
            children.append(_group(node, where, row, schema, as_of))
        else:
            children.append(_condition(node, where, row, schema, as_of))
    result = combine(group.logic, [child.result for child in children])
    return GroupOutcome(location, group.logic, result, tuple(children))


def _condition(
    condition: Condition, location: str, row: Mapping[str, Any], schema: LakeSchema, as_of: date
) -> ConditionOutcome:
    column = schema.resolve(condition.field)
    actual = lake_value(row.get(column.alias))
    text_date = reads_text_as_date(condition, column)
    return ConditionOutcome(
        location=location,
        field=condition.field,
        column=column.qualified,
        operator=condition.operator,
        value=condition.value,
        actual=actual,
        result=condition_holds(condition, condition_kind(condition, column), actual, as_of),
        text_date=text_date,
        parsed=parse_date_text(actual) if text_date else None,
    )


def _leaves(outcome: GroupOutcome) -> list[ConditionOutcome]:
    found: list[ConditionOutcome] = []
    for child in outcome.children:
        found.extend(_leaves(child) if isinstance(child, GroupOutcome) else [child])
    return found


def _display(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, date):
        return str(value)  # 2024-03-01, or 2024-03-01 08:30:00 for a timestamp
    return show(value)


def _shown_value(outcome: ConditionOutcome) -> str:
    if not outcome.text_date or outcome.actual is None:
        return _display(outcome.actual)
    if outcome.parsed is None:
        return f"text {show(outcome.actual)}, which is not a date (YYYY-MM-DD[ HH:MM:SS])"
    return f"{outcome.parsed} (read from the text {show(outcome.actual)})"


def _lines(outcome: GroupOutcome | ConditionOutcome, depth: int) -> list[str]:
    pad = "  " * depth
    verdict = "true" if outcome.result else "false"
    if isinstance(outcome, ConditionOutcome):
        test = f"{outcome.field} {outcome.operator}"
        if outcome.value is not None:
            test += f" {show(outcome.value)}"
        return [
            f"{pad}{outcome.location}: {test} -- user's {outcome.column} is "
            f"{_shown_value(outcome)} -> {verdict}"
        ]
    lines = [f"{pad}{outcome.location}: {outcome.logic} -> {verdict}"]
    for child in outcome.children:
        lines += _lines(child, depth + 1)
    return lines
