"""Rule JSON to SQL text, for the baselines only (Spark SQL and DuckDB dialects).

The product never splices values into SQL; a benchmark baseline may. Semantics follow SPEC
section 3: a condition on null is false (except is_null), NOT is two-valued, text tests are
literal, ranges are inclusive, relative dates count back from as_of.
Columns are referenced by their bare lake name (unique across the demo tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Literal

Dialect = Literal["spark", "duckdb"]

_COMPARE = {"=": "=", "!=": "<>", ">": ">", "<": "<", ">=": ">=", "<=": "<="}
_NEGATED = {"not_in": "in", "not_contains": "contains", "not_in_range": "in_range"}
_TEXT_FUNCTION = {
    "spark": {"contains": "contains", "starts_with": "startswith", "ends_with": "endswith"},
    "duckdb": {"contains": "contains", "starts_with": "starts_with", "ends_with": "ends_with"},
}
DATE_COLUMNS = frozenset({"registration_date", "last_login_date"})


def tag_condition(rules: Sequence[dict[str, Any]], as_of: date, dialect: Dialect) -> str:
    """A never-null boolean SQL expression: true when any of the tag's rules holds."""
    if not rules:
        return "FALSE"
    return " OR ".join(f"({group(rule, as_of, dialect)})" for rule in rules)


def group(rule: dict[str, Any], as_of: date, dialect: Dialect) -> str:
    parts = [
        group(node, as_of, dialect) if "logic" in node else condition(node, as_of, dialect)
        for node in rule["conditions"]
    ]
    joiner = " OR " if rule["logic"] == "OR" else " AND "
    body = joiner.join(f"({p})" for p in parts)
    return f"NOT ({body})" if rule["logic"] == "NOT" else body


def column_name(field: str) -> str:
    return field.rsplit(".", 1)[-1]


def condition(node: dict[str, Any], as_of: date, dialect: Dialect) -> str:
    name = column_name(node["field"])
    op = node["operator"]
    if op == "is_null":
        return f"{name} IS NULL"
    if op == "is_not_null":
        return f"{name} IS NOT NULL"
    return f"COALESCE({predicate(op, name, node.get('value'), as_of, dialect)}, FALSE)"


def predicate(op: str, name: str, value: Any, as_of: date, dialect: Dialect) -> str:
    if op in _NEGATED:
        return f"NOT ({predicate(_NEGATED[op], name, value, as_of, dialect)})"
    is_date = name in DATE_COLUMNS
    if op in _COMPARE:
        return f"{name} {_COMPARE[op]} {literal(value, dialect, is_date)}"
    if op in _TEXT_FUNCTION[dialect]:
        return f"{_TEXT_FUNCTION[dialect][op]}({name}, {literal(value, dialect)})"
    if op == "in":
        items = ", ".join(literal(v, dialect, is_date) for v in value)
        return f"{name} IN ({items})"
    if op in ("in_range", "date_between"):
        low, high = (literal(v, dialect, is_date) for v in value)
        return f"{name} BETWEEN {low} AND {high}"
    return _relative(op, name, value, as_of)


def _relative(op: str, name: str, value: Any, as_of: date) -> str:
    if op == "days_ago":
        return f"{name} <= {_date(as_of - timedelta(days=value))}"
    if op == "recent_days":
        low, high = as_of - timedelta(days=value), as_of
    elif op == "days_ago_between":
        low, high = as_of - timedelta(days=value[1]), as_of - timedelta(days=value[0])
    else:
        raise ValueError(f"the baseline translator does not know operator {op!r}")
    return f"{name} BETWEEN {_date(low)} AND {_date(high)}"


def _date(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def literal(value: Any, dialect: Dialect, is_date: bool = False) -> str:
    if is_date:
        return _date(date.fromisoformat(value))
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Spark SQL reads 30.5 as a DECIMAL; the product compares with a double literal.
        return f"{value!r}D" if dialect == "spark" else f"CAST({value!r} AS DOUBLE)"
    text = str(value).replace("'", "''")
    if dialect == "spark":
        text = text.replace("\\", "\\\\")
    return f"'{text}'"


def tag_array(tags: Sequence[tuple[int, Sequence[dict[str, Any]]]], as_of: date, d: Dialect) -> str:
    """The sorted ids of the tags that hold, as one array expression (empty: no tag)."""
    cases = [
        f"CASE WHEN {tag_condition(rules, as_of, d)} THEN {tag_id} END"
        for tag_id, rules in sorted(tags, key=lambda t: t[0])
    ]
    if not cases:
        return "CAST(array() AS ARRAY<INT>)" if d == "spark" else "CAST([] AS INTEGER[])"
    if d == "spark":
        return f"CAST(array_compact(array({', '.join(cases)})) AS ARRAY<INT>)"
    return f"list_filter([{', '.join(cases)}], lambda x: x IS NOT NULL)"
