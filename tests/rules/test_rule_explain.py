"""explain_rule: each condition's field, the user's value and result; groups; rendering."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime

import pytest

from tagsys.lake.schema import LakeSchema
from tagsys.rules.explain import ConditionOutcome, GroupOutcome, explain_rule
from tagsys.rules.validate import RuleValidationError

AS_OF = date(2024, 3, 15)
RULE = {
    "logic": "AND",
    "conditions": [
        {"field": "total_asset_value", "operator": ">=", "value": 100000, "type": "number"},
        {
            "logic": "NOT",
            "conditions": [
                {"field": "kyc_status", "operator": "=", "value": "verified"},
                {"field": "last_login", "operator": "recent_days", "value": 30},
            ],
        },
    ],
}
ROW = {
    "acct__total_asset_value": 150000,
    "acct__kyc_status": None,
    "acct__last_login": datetime(2024, 3, 1, 8, 30, tzinfo=UTC),
}


def test_explains_every_condition_and_group(schema: LakeSchema) -> None:
    explanation = explain_rule(RULE, ROW, schema, AS_OF)
    assert explanation.result is True
    assert [
        (o.location, o.column, o.operator, o.actual, o.result) for o in explanation.conditions()
    ] == [
        ("conditions[0]", "acct.total_asset_value", ">=", 150000, True),
        ("conditions[1].conditions[0]", "acct.kyc_status", "=", None, False),
        (
            "conditions[1].conditions[1]",
            "acct.last_login",
            "recent_days",
            ROW["acct__last_login"],
            True,
        ),
    ]
    root = explanation.root
    assert (root.location, root.logic, root.result) == ("$", "AND", True)
    inner = root.children[1]
    assert isinstance(inner, GroupOutcome)
    assert (inner.location, inner.logic, inner.result) == ("conditions[1]", "NOT", True)


def test_render_is_readable(schema: LakeSchema) -> None:
    lines = explain_rule(RULE, {**ROW, "acct__total_asset_value": 99999}, schema, AS_OF).render()
    assert lines == [
        "rule does not hold (as of 2024-03-15)",
        "$: AND -> false",
        "  conditions[0]: total_asset_value >= 100000 -- user's acct.total_asset_value is 99999"
        " -> false",
        "  conditions[1]: NOT -> true",
        '    conditions[1].conditions[0]: kyc_status = "verified" -- user\'s acct.kyc_status is'
        " null -> false",
        "    conditions[1].conditions[1]: last_login recent_days 30 -- user's acct.last_login is"
        " 2024-03-01 08:30:00+00:00 -> true",
    ]


def test_missing_user_is_all_nulls(schema: LakeSchema) -> None:
    explanation = explain_rule(RULE, {}, schema, AS_OF)
    assert explanation.result is False
    assert [o.result for o in explanation.conditions()] == [False, False, False]
    assert all(
        isinstance(o, ConditionOutcome) and o.actual is None for o in explanation.conditions()
    )


def test_invalid_rule_is_not_explained(schema: LakeSchema) -> None:
    with pytest.raises(RuleValidationError, match=r"conditions\[0\]\.field: unknown field"):
        explain_rule(
            '{"logic": "AND", "conditions": [{"field": "x", "operator": "is_null"}]}',
            ROW,
            schema,
            AS_OF,
        )


def test_pure_modules_import_without_spark() -> None:
    import subprocess

    code = (
        "import sys; import tagsys.rules, tagsys.rules.explain, tagsys.rules.reference; "
        "assert 'pyspark' not in sys.modules, 'pyspark imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
