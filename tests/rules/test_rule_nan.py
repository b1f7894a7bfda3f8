"""NaN in a floating column is a missing value: every operator treats it as null, in runs
(Spark, which alone would order NaN above every number and equal to itself) and in explain."""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

import pytest

from tagsys.lake.schema import LakeColumn, LakeSchema
from tagsys.rules.compiler import CompiledTag, RuleSource, compile_tag
from tagsys.rules.explain import explain_rule
from tagsys.rules.model import Group
from tagsys.rules.reference import evaluate_rule

AS_OF = date(2024, 3, 15)
BALANCE = LakeColumn("assets", "balance", "number", "double")
RATE = LakeColumn("assets", "rate", "number", "float")
SCHEMA = LakeSchema.from_columns([BALANCE, RATE])
CONDITIONS: list[dict[str, Any]] = [
    {"operator": ">", "value": 1_000_000},
    {"operator": "<", "value": 0},
    {"operator": "=", "value": 1.5},
    {"operator": "!=", "value": 1.5},
    {"operator": "in", "value": [1.5, 2]},
    {"operator": "not_in", "value": [1.5]},
    {"operator": "in_range", "value": [0, 10]},
    {"operator": "not_in_range", "value": [0, 10]},
    {"operator": "is_null"},
    {"operator": "is_not_null"},
]
# NaN matches what null matches: only is_null, and NOT of anything else.
MATCHES_NAN = [{"operator": "is_null"}]


def rules() -> list[dict[str, Any]]:
    found = []
    for field in ("balance", "rate"):
        for condition in CONDITIONS:
            leaf = {"field": field, **condition}
            found += [
                {"logic": "AND", "conditions": [leaf]},
                {"logic": "NOT", "conditions": [leaf]},
            ]
    return found


@pytest.mark.spark
def test_nan_is_null_to_every_operator_in_runs_and_explain(spark_eval: Any) -> None:
    batch = rules()
    compiled = [compile_tag(i, [RuleSource(i, r)], SCHEMA, AS_OF) for i, r in enumerate(batch)]
    assert all(isinstance(c, CompiledTag) for c in compiled)
    rows = [
        {BALANCE.alias: math.nan, RATE.alias: math.nan},
        {BALANCE.alias: None, RATE.alias: None},
        {BALANCE.alias: 2_000_000.0, RATE.alias: 1.5},
    ]

    got = spark_eval([BALANCE, RATE], rows, [c.column for c in compiled])  # type: ignore[union-attr]

    for rule, on_nan, on_null in zip(batch, got[0], got[1], strict=True):
        leaf = {k: v for k, v in rule["conditions"][0].items() if k != "field"}
        want = (leaf in MATCHES_NAN) != (rule["logic"] == "NOT")
        assert on_nan is want is on_null, json.dumps(rule)
    for row, results in zip(rows, got, strict=True):
        for rule, result in zip(batch, results, strict=True):
            assert result is evaluate_rule(Group.model_validate(rule), row, SCHEMA, AS_OF)
            explained = explain_rule(rule, row, SCHEMA, AS_OF)
            assert explained.result is result, json.dumps(rule)
    first = explain_rule(batch[0], rows[0], SCHEMA, AS_OF).conditions()[0]
    assert first.actual is None  # shown as null, and JSON can carry it
