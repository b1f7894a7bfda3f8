"""The rule model: the seed's format, nesting, strictness, and the committed JSON Schema."""

from __future__ import annotations

import json
from typing import get_args

import pytest
from pydantic import ValidationError

from tagsys.rules.model import OPERATOR_KINDS, OPERATORS, Condition, Group, iter_conditions
from tagsys.rules.schema_file import SCHEMA_PATH, render_rule_schema

SEED_RULE = """{
  "logic": "AND",
  "conditions": [
    {"field": "total_asset_value", "operator": ">=", "value": 100000, "type": "number"},
    {"field": "kyc_status", "operator": "=", "value": "verified", "type": "string"}
  ]
}"""

SPEC_OPERATORS = [
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


def test_seed_flat_format_parses_unchanged() -> None:
    rule = Group.model_validate_json(SEED_RULE)
    assert rule.logic == "AND"
    assert rule.conditions == [
        Condition(field="total_asset_value", operator=">=", value=100000, type="number"),
        Condition(field="kyc_status", operator="=", value="verified", type="string"),
    ]
    assert json.loads(rule.model_dump_json(exclude_none=True)) == json.loads(SEED_RULE)


def test_groups_nest_to_any_depth() -> None:
    leaf = {"field": "a", "operator": "is_null"}
    rule: dict = {"logic": "NOT", "conditions": [leaf]}
    for depth in range(30):
        rule = {"logic": ("AND", "OR", "NOT")[depth % 3], "conditions": [leaf, rule]}
    parsed = Group.model_validate(rule)
    assert len(iter_conditions(parsed)) == 31


def test_values_keep_their_json_types() -> None:
    rule = Group.model_validate_json(
        '{"logic": "OR", "conditions": [{"field": "a", "operator": "in", '
        '"value": [true, 1, 1.5, "1"]}]}'
    )
    condition = rule.conditions[0]
    assert isinstance(condition, Condition)
    assert condition.value == [True, 1, 1.5, "1"]
    assert [type(v) for v in condition.value] == [bool, int, float, str]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        {"logic": "AND", "conditions": []},
        {"logic": "XOR", "conditions": [{"field": "a", "operator": "is_null"}]},
        {"logic": "AND", "conditions": [{"field": "a", "operator": "like", "value": "x"}]},
        {"logic": "AND", "conditions": [{"field": "a", "operator": "=", "value": 1, "extra": 1}]},
        {"logic": "AND", "conditions": [{"field": "a", "operator": "=", "type": "money"}]},
        {"logic": "AND", "conditions": [{"field": "a", "operator": "=", "value": {"x": 1}}]},
        {"logic": "AND", "conditions": [{"field": "a", "operator": "=", "value": [[1]]}]},
        {"logic": "AND", "conditions": [{"field": 1, "operator": "="}]},
    ],
)
def test_model_refuses_malformed_rules(bad: dict) -> None:
    with pytest.raises(ValidationError):
        Group.model_validate(bad)


def test_operators_are_exactly_the_specs() -> None:
    assert list(OPERATORS) == SPEC_OPERATORS
    assert set(OPERATOR_KINDS) == set(SPEC_OPERATORS)
    assert list(get_args(Condition.model_fields["operator"].annotation)) == SPEC_OPERATORS


def test_committed_json_schema_matches_the_model() -> None:
    committed = SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == render_rule_schema(), (
        "src/tagsys/rules/rule-schema.json is stale: run `python -m tagsys.rules.schema_file`"
    )
    schema = json.loads(committed)
    condition = schema["$defs"]["Condition"]
    assert condition["additionalProperties"] is False
    assert condition["properties"]["operator"]["enum"] == SPEC_OPERATORS
    assert schema["$defs"]["Group"]["properties"]["logic"]["enum"] == ["AND", "OR", "NOT"]
