"""Integers beyond bigint in a rule compare exactly with integer columns (as decimals), in runs
and in explain; beyond 38 digits they compare as doubles, which no bigint comes near."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from tagsys.lake.schema import LakeColumn, LakeSchema
from tagsys.rules.compiler import CompiledTag, RuleSource, compile_tag
from tagsys.rules.explain import explain_rule
from tagsys.rules.model import Group
from tagsys.rules.reference import evaluate_rule

AS_OF = date(2024, 3, 15)
COUNT = LakeColumn("t", "n", "number", "bigint")
AMOUNT = LakeColumn("t", "x", "number", "double")
SCHEMA = LakeSchema.from_columns([COUNT, AMOUNT])
LONG_MAX, LONG_MIN = 2**63 - 1, -(2**63)
VALUES = [2**63, 2**63 + 1, -(2**63) - 1, 2**64, 10**40, -(10**40)]
ROWS: list[dict[str, Any]] = [
    {COUNT.alias: LONG_MAX, AMOUNT.alias: 1e19},
    {COUNT.alias: LONG_MIN, AMOUNT.alias: -1e19},
    {COUNT.alias: 0, AMOUNT.alias: 0.0},
    {COUNT.alias: None, AMOUNT.alias: None},
]


def rules() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for field in ("n", "x"):
        leaves: list[dict[str, Any]] = [
            {"operator": op, "value": v} for v in VALUES for op in ("=", "!=", ">", ">=", "<", "<=")
        ]
        leaves += [
            {"operator": "in", "value": [2**63, 0]},
            {"operator": "not_in", "value": [2**64, 1]},
            {"operator": "in_range", "value": [0, 2**64]},
            {"operator": "not_in_range", "value": [-(2**63) - 1, 2**63]},
        ]
        found += [{"logic": "AND", "conditions": [{"field": field, **leaf}]} for leaf in leaves]
    return found


def test_a_bigint_at_its_limit_is_told_from_the_next_integer() -> None:
    """What a double would get wrong: (2^63 - 1) as a double is 2^63."""
    assert float(LONG_MAX) == float(2**63)
    rule = {"logic": "AND", "conditions": [{"field": "n", "operator": ">=", "value": 2**63}]}
    assert evaluate_rule(Group.model_validate(rule), ROWS[0], SCHEMA, AS_OF) is False


@pytest.mark.spark
def test_huge_integers_agree_in_runs_and_explain(spark_eval: Any) -> None:
    batch = rules()
    compiled = [compile_tag(i, [RuleSource(i, r)], SCHEMA, AS_OF) for i, r in enumerate(batch)]
    assert all(isinstance(c, CompiledTag) for c in compiled)

    got = spark_eval([COUNT, AMOUNT], ROWS, [c.column for c in compiled])  # type: ignore[union-attr]

    for row, results in zip(ROWS, got, strict=True):
        for rule, result in zip(batch, results, strict=True):
            want = evaluate_rule(Group.model_validate(rule), row, SCHEMA, AS_OF)
            assert result is want, f"{json.dumps(rule)} on {row}"
            assert explain_rule(rule, row, SCHEMA, AS_OF).result is want, json.dumps(rule)
    at_limit = dict(zip(map(json.dumps, batch), got[0], strict=True))
    ge = {"logic": "AND", "conditions": [{"field": "n", "operator": ">=", "value": 2**63}]}
    lt = {"logic": "AND", "conditions": [{"field": "n", "operator": "<", "value": 2**63}]}
    assert at_limit[json.dumps(ge)] is False and at_limit[json.dumps(lt)] is True
