"""Spark (the compiler) and the reference evaluator agree on random rules over random rows.

Values come from small pools around the boundaries (as_of, N days ago, equal values) so
that matches, misses and nulls are all common. Each hypothesis example evaluates a whole
batch of rules in one Spark job over a tiny frame.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagsys.lake.schema import LakeColumn, LakeSchema
from tagsys.rules.compiler import CompiledTag, RuleSource, compile_tag
from tagsys.rules.explain import explain_rule
from tagsys.rules.model import Group
from tagsys.rules.reference import evaluate_rule
from tagsys.rules.validate import validate_rule

AS_OF = date(2024, 3, 15)
COLUMNS = (
    LakeColumn("t", "n", "number", "bigint"),
    LakeColumn("t", "x", "number", "double"),
    LakeColumn("t", "s", "string", "string"),
    LakeColumn("t", "d", "date", "date"),
    LakeColumn("t", "ts", "date", "timestamp"),
    LakeColumn("u", "b", "boolean", "boolean"),
    LakeColumn("u", "s", "string", "string"),
)
SCHEMA = LakeSchema.from_columns(COLUMNS)

INTS = [-2, -1, 0, 1, 2, 10]
FLOATS = [-1.5, 0.5, 1.0, 2.0]
TEXTS = ["", "a", "ab", "a%", "a_b", "b", "B", "%", "_", "高", "高净值", "x'y", 'q"', "\\", "a\\b"]
DAY_OFFSETS = [-40, -31, -30, -29, -7, -1, 0, 1, 5]
DATES = [AS_OF + timedelta(days=k) for k in DAY_OFFSETS]
TIMES = [time(0, 0), time(12, 0), time(23, 59, 59)]
DAY_COUNTS = [0, 1, 7, 29, 30, 31, 40]

NUMBER_OPS = ["=", "!=", ">", "<", ">=", "<=", "in", "not_in", "in_range", "not_in_range"]
TEXT_OPS = ["=", "!=", ">", "<", ">=", "<=", "in", "not_in", "contains", "not_contains"]
TEXT_OPS += ["starts_with", "ends_with"]
DATE_OPS = ["=", "!=", ">", "<", ">=", "<=", "in", "not_in", "in_range", "not_in_range"]
DATE_OPS += ["date_between", "recent_days", "days_ago", "days_ago_between"]
BOOL_OPS = ["=", "!=", "in", "not_in"]
NULL_OPS = ["is_null", "is_not_null"]

numbers = st.sampled_from(INTS + FLOATS)
texts = st.sampled_from(TEXTS)
iso_dates = st.sampled_from([d.isoformat() for d in DATES])
booleans = st.booleans()
SCALARS = {"number": numbers, "string": texts, "date": iso_dates, "boolean": booleans}
OPERATORS = {"number": NUMBER_OPS, "string": TEXT_OPS, "date": DATE_OPS, "boolean": BOOL_OPS}


def ordered_pair(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(values, values).map(lambda pair: sorted(pair))


def value_for(operator: str, kind: str) -> st.SearchStrategy[Any]:
    scalar = SCALARS[kind]
    if operator in ("in", "not_in"):
        return st.lists(scalar, min_size=1, max_size=3)
    if operator in ("in_range", "not_in_range", "date_between"):
        return ordered_pair(scalar)
    if operator in ("recent_days", "days_ago"):
        return st.sampled_from(DAY_COUNTS)
    if operator == "days_ago_between":
        return ordered_pair(st.sampled_from(DAY_COUNTS))
    return scalar


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    column = draw(st.sampled_from(COLUMNS))
    field = column.qualified if column.name == "s" else column.name
    kind = column.kind
    assert kind is not None
    operator = draw(st.sampled_from(OPERATORS[kind] + NULL_OPS))
    condition: dict[str, Any] = {"field": field, "operator": operator}
    if operator not in NULL_OPS:
        condition["value"] = draw(value_for(operator, kind))
    if draw(st.booleans()):
        condition["type"] = kind
    return condition


def groups(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "logic": st.sampled_from(["AND", "OR", "NOT"]),
            "conditions": st.lists(children, min_size=1, max_size=4),
        }
    )


rules = groups(st.recursive(conditions(), groups, max_leaves=6))


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values, values)


timestamps = st.builds(
    lambda day, moment: datetime.combine(day, moment, tzinfo=UTC),
    st.sampled_from(DATES),
    st.sampled_from(TIMES),
)
rows = st.fixed_dictionaries(
    {
        "t__n": maybe(st.sampled_from(INTS)),
        "t__x": maybe(st.sampled_from([*FLOATS, 0.0, 10.0, math.inf, math.nan])),
        "t__s": maybe(texts),
        "t__d": maybe(st.sampled_from(DATES)),
        "t__ts": maybe(timestamps),
        "u__b": maybe(booleans),
        "u__s": maybe(texts),
    }
)


@pytest.mark.spark
@settings(
    max_examples=10,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    table=st.lists(rows, min_size=1, max_size=6), batch=st.lists(rules, min_size=30, max_size=40)
)
def test_spark_agrees_with_reference(spark_eval: Any, table: list[dict], batch: list[dict]) -> None:
    compiled = [
        compile_tag(i, [RuleSource(i, rule)], SCHEMA, AS_OF) for i, rule in enumerate(batch)
    ]
    assert all(isinstance(tag, CompiledTag) for tag in compiled)
    values = spark_eval(COLUMNS, table, [tag.column for tag in compiled])  # type: ignore[union-attr]
    for row, row_values in zip(table, values, strict=True):
        for rule, got in zip(batch, row_values, strict=True):
            want = evaluate_rule(Group.model_validate(rule), row, SCHEMA, AS_OF)
            assert got is want, f"rule {json.dumps(rule, ensure_ascii=False)} on row {row}"


@settings(max_examples=200, deadline=None, database=None)
@given(row=rows, rule=rules)
def test_generated_rules_are_valid_and_explain_matches_reference(row: dict, rule: dict) -> None:
    assert validate_rule(json.dumps(rule, ensure_ascii=False), SCHEMA) == []
    explanation = explain_rule(rule, row, SCHEMA, AS_OF)
    assert explanation.result is evaluate_rule(Group.model_validate(rule), row, SCHEMA, AS_OF)
    assert len(explanation.conditions()) == json.dumps(rule).count('"operator"')
