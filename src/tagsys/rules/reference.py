"""A plain-Python evaluator of the rule semantics (SPEC section 3), one user row at a time.

Written from the SPEC on its own, sharing nothing with the Spark compiler but the parsed
model, so that the two can be tested against each other. A row maps `LakeColumn.alias` to
the user's value (None or absent = null).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tagsys.lake.dates import parse_date_text
from tagsys.lake.schema import LakeSchema, ValueKind
from tagsys.rules.model import Condition, Group, condition_kind, parse_iso_date


def evaluate_rule(rule: Group, row: Mapping[str, Any], schema: LakeSchema, as_of: date) -> bool:
    """Whether one validated rule holds for one user's row."""
    results = [
        evaluate_rule(node, row, schema, as_of)
        if isinstance(node, Group)
        else condition_holds(node, *user_value(node, row, schema), as_of)
        for node in rule.conditions
    ]
    return combine(rule.logic, results)


def combine(logic: str, results: Sequence[bool]) -> bool:
    """Two-valued group logic: AND, OR, and NOT = not(all of them)."""
    if logic == "AND":
        return all(results)
    if logic == "OR":
        return any(results)
    return not all(results)


def user_value(
    condition: Condition, row: Mapping[str, Any], schema: LakeSchema
) -> tuple[ValueKind | None, Any]:
    """The column kind and the user's value for the condition's field."""
    column = schema.resolve(condition.field)
    return condition_kind(condition, column), lake_value(row.get(column.alias))


def lake_value(value: Any) -> Any:
    """A value as rules see it: NaN (a floating column's "not a number") is a missing value,
    null to every operator, as in pandas-written lakes; Spark alone would order it above
    every number."""
    return None if isinstance(value, float) and math.isnan(value) else value


def condition_holds(condition: Condition, kind: ValueKind | None, actual: Any, as_of: date) -> bool:
    """One condition on one value: false on null, except for is_null."""
    if condition.operator == "is_null":
        return actual is None
    if condition.operator == "is_not_null":
        return actual is not None
    if actual is None:
        return False
    expected = condition.value
    if isinstance(actual, Decimal) and _has_float(expected):
        actual = float(actual)  # Spark compares a decimal column with a float as doubles
    if kind == "date":
        actual = _as_date(actual)
        if actual is None:  # text that is not a date
            return False
        if condition.operator not in _RELATIVE:
            expected = _as_dates(expected)
    return bool(_TESTS[condition.operator](actual, expected, as_of))


def _has_float(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, float) for v in values)


def _as_date(actual: Any) -> date | None:
    """A date column's value (dates stored as text are parsed; timestamps give their date)."""
    if isinstance(actual, str):
        return parse_date_text(actual)
    return actual.date() if isinstance(actual, datetime) else actual


def _as_dates(value: Any) -> Any:
    return [parse_iso_date(v) for v in value] if isinstance(value, list) else parse_iso_date(value)


def _days_before(as_of: date, days: int) -> date:
    return as_of - timedelta(days=days)


_Test = Callable[[Any, Any, date], bool]

_TESTS: dict[str, _Test] = {
    "=": lambda a, v, _: a == v,
    "!=": lambda a, v, _: a != v,
    ">": lambda a, v, _: a > v,
    "<": lambda a, v, _: a < v,
    ">=": lambda a, v, _: a >= v,
    "<=": lambda a, v, _: a <= v,
    "in": lambda a, v, _: any(a == item for item in v),
    "not_in": lambda a, v, _: all(a != item for item in v),
    "contains": lambda a, v, _: v in a,
    "not_contains": lambda a, v, _: v not in a,
    "starts_with": lambda a, v, _: a.startswith(v),
    "ends_with": lambda a, v, _: a.endswith(v),
    "in_range": lambda a, v, _: v[0] <= a <= v[1],
    "not_in_range": lambda a, v, _: not (v[0] <= a <= v[1]),
    "date_between": lambda a, v, _: v[0] <= a <= v[1],
    "recent_days": lambda a, v, as_of: _days_before(as_of, v) <= a <= as_of,
    "days_ago": lambda a, v, as_of: a <= _days_before(as_of, v),
    "days_ago_between": lambda a, v, as_of: (
        _days_before(as_of, v[1]) <= a <= _days_before(as_of, v[0])
    ),
}
_RELATIVE = frozenset({"recent_days", "days_ago", "days_ago_between"})
