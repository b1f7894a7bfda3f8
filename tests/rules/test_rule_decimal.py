"""Decimal columns: runs (Spark) and the reference (explain) agree, float values included.

Spark compares a decimal column with a float value as doubles, so 0.10 stored equals 0.1
written in a rule; compared exactly, Decimal('0.10') != 0.1.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from tagsys.lake.schema import LakeColumn, LakeSchema
from tagsys.rules.compiler import CompiledTag, RuleSource, compile_tag
from tagsys.rules.model import Group
from tagsys.rules.reference import evaluate_rule

AS_OF = date(2024, 3, 15)
SPEND = LakeColumn("orders", "spend", "number", "decimal(10,2)")
SCHEMA = LakeSchema.from_columns([SPEND])
VALUES = [Decimal("0.10"), Decimal("0.30"), Decimal("1.00"), Decimal("99999999.99"), None]
CONDITIONS: list[tuple[str, Any]] = [
    ("=", 0.1),
    ("!=", 0.1),
    (">=", 0.1),
    ("<", 0.1),
    (">", 0.3),
    ("<=", 0.3),
    ("=", 1),
    ("in", [0.1, 0.3]),
    ("not_in", [0.3]),
    ("in", [1, 2]),
    ("in_range", [0.1, 0.3]),
    ("not_in_range", [0.3, 1.5]),
]


@pytest.mark.spark
def test_decimal_columns_compare_as_spark_does(spark_eval: Any) -> None:
    rules = [
        {"logic": "AND", "conditions": [{"field": "spend", "operator": op, "value": value}]}
        for op, value in CONDITIONS
    ]
    compiled = [compile_tag(i, [RuleSource(i, r)], SCHEMA, AS_OF) for i, r in enumerate(rules)]
    assert all(isinstance(c, CompiledTag) for c in compiled)
    rows = [{SPEND.alias: value} for value in VALUES]

    got = spark_eval([SPEND], rows, [c.column for c in compiled])  # type: ignore[union-attr]

    for row, results in zip(rows, got, strict=True):
        for r, result in zip(rules, results, strict=True):
            want = evaluate_rule(Group.model_validate(r), row, SCHEMA, AS_OF)
            assert result is want, f"{json.dumps(r)} on {row}"
    assert got[0][0] is True  # 0.10 stored is the rule's 0.1
