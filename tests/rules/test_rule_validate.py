"""Validation: each problem's exact location and message; all problems at once; fail closed."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tagsys.errors import RuleError
from tagsys.lake.schema import LakeSchema
from tagsys.rules.compiler import CompiledTag, RuleSource, TagFailure, compile_tag
from tagsys.rules.model import Group
from tagsys.rules.validate import RuleValidationError, parse_rule, validate_rule

AS_OF = date(2024, 3, 15)


def c(field: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    cond = {"field": field, "operator": operator, **extra}
    return cond if value is None else {**cond, "value": value}


def g(logic: str, *conditions: Any) -> dict[str, Any]:
    return {"logic": logic, "conditions": list(conditions)}


def one(*conditions: Any) -> dict[str, Any]:
    return g("AND", *conditions)


# (case id, rule, expected problems: [(location, [text each message must contain])])
CASES: list[tuple[str, Any, list[tuple[str, list[str]]]]] = [
    (
        "malformed json",
        '{"logic": "AND",\n "conditions": [}',
        [("$", ["not valid JSON", "line 2, column 17"])],
    ),
    ("not an object", "[1, 2]", [("$", ["must be a JSON object", "[1, 2]"])]),
    (
        "bare condition",
        c("vip", "=", True),
        [("$", ["must be a group", '{"logic": "AND", "conditions"'])],
    ),
    (
        "unknown field",
        one(c("total_asset", ">", 1)),
        [("conditions[0].field", ["unknown field 'total_asset'", "total_asset_value", "balance"])],
    ),
    (
        "ambiguous field",
        one(c("name", "=", "x")),
        [("conditions[0].field", ["ambiguous field 'name'", "acct.name, trade.name"])],
    ),
    (
        "unknown table",
        one(c("bogus.name", "=", "x")),
        [("conditions[0].field", ["unknown table 'bogus'", "acct, trade"])],
    ),
    (
        "unknown column of table",
        one(c("trade.vip", "=", True)),
        [("conditions[0].field", ["table 'trade' has no column 'vip'", "trade_count_30d"])],
    ),
    (
        "unusable column type",
        one(c("labels", "is_null")),
        [("conditions[0].field", ["'labels'", "array<string>", "cannot test"])],
    ),
    (
        "operator does not fit number",
        one(c("total_asset_value", "contains", "1")),
        [
            (
                "conditions[0].operator",
                ["'contains'", "'total_asset_value'", "a number column", "in_range"],
            )
        ],
    ),
    (
        "operator does not fit boolean",
        one(c("vip", ">", True)),
        [("conditions[0].operator", ["'>'", "true/false column", "=, !=, in, not_in"])],
    ),
    (
        "relative date on text",
        one(c("kyc_status", "recent_days", 3)),
        [("conditions[0].operator", ["'recent_days'", "a text column", "starts_with"])],
    ),
    (
        "type contradicts column",
        one(c("kyc_status", "=", "1", type="number")),
        [("conditions[0].type", ["'number' contradicts", "'kyc_status'", "write 'string'"])],
    ),
    (
        "unknown type",
        one(c("kyc_status", "=", "x", type="money")),
        [("conditions[0].type", ['unknown type "money"', "number, string, date, boolean"])],
    ),
    (
        "unknown operator lists the column's operators",
        one(c("kyc_status", "like", "%x%")),
        [("conditions[0].operator", ['unknown operator "like"', "text column", "contains"])],
    ),
    (
        "unknown logic",
        g("XOR", c("vip", "is_null")),
        [("logic", ['unknown logic "XOR"', "AND, OR, NOT"])],
    ),
    (
        "lowercase logic",
        one(g("or", c("vip", "is_null"))),
        [("conditions[0].logic", ["write 'OR'"])],
    ),
    ("empty rule", g("AND"), [("conditions", ["the group is empty"])]),
    (
        "empty nested group",
        one(c("vip", "is_null"), g("NOT")),
        [("conditions[1].conditions", ["the group is empty"])],
    ),
    (
        "missing pieces",
        one({"value": 1}),
        [
            ("conditions[0].field", ["missing 'field'"]),
            ("conditions[0].operator", ["missing 'operator'", "is_null"]),
        ],
    ),
    ("missing logic", {"conditions": [c("vip", "is_null")]}, [("logic", ["missing 'logic'"])]),
    (
        "unknown key",
        one({"field": "vip", "operator": "=", "valeu": True}),
        [
            ("conditions[0].valeu", ["unknown key 'valeu'", "field, operator, value, type"]),
            ("conditions[0].value", ["'=' on field 'vip' needs true or false", "no 'value'"]),
        ],
    ),
    (
        "entry not an object",
        one("vip = true"),
        [("conditions[0]", ["must be a condition", '"vip = true"'])],
    ),
    (
        "bool is not a number",
        one(c("total_asset_value", ">=", True)),
        [("conditions[0].value", ["'>=' on field 'total_asset_value' needs a number", "true"])],
    ),
    (
        "number as text",
        one(c("total_asset_value", ">=", "100000")),
        [("conditions[0].value", ["needs a number", '"100000"'])],
    ),
    (
        "not a finite number",
        '{"logic": "AND", "conditions": [{"field": "balance", "operator": ">", "value": NaN}]}',
        [("conditions[0].value", ["needs a number", "NaN"])],
    ),
    (
        "number for text",
        one(c("kyc_status", "=", 1)),
        [("conditions[0].value", ["needs a text value", "got 1"])],
    ),
    (
        "number for boolean",
        one(c("vip", "=", 1)),
        [("conditions[0].value", ["needs true or false", "got 1"])],
    ),
    (
        "date not ISO",
        one(c("opened", "=", "2024/03/01")),
        [("conditions[0].value", ['a date written "YYYY-MM-DD"', '"2024/03/01"'])],
    ),
    (
        "date does not exist",
        one(c("opened", ">", "2023-02-29")),
        [("conditions[0].value", ["YYYY-MM-DD", "2023-02-29"])],
    ),
    (
        "in_range one value",
        one(c("balance", "in_range", [5])),
        [("conditions[0].value", ["exactly two numbers [low, high]", "[5]"])],
    ),
    (
        "in_range reversed",
        one(c("balance", "in_range", [10, 5])),
        [("conditions[0].value", ["low <= high", "first is greater", "[10, 5]"])],
    ),
    (
        "in_range bad element",
        one(c("balance", "not_in_range", [1, "9"])),
        [("conditions[0].value[1]", ["two numbers", '"9"'])],
    ),
    (
        "date_between reversed",
        one(c("opened", "date_between", ["2024-02-01", "2024-01-01"])),
        [("conditions[0].value", ["first is greater"])],
    ),
    (
        "in empty list",
        one(c("kyc_status", "in", [])),
        [("conditions[0].value", ["a non-empty list of text values", "[]"])],
    ),
    (
        "in not a list",
        one(c("kyc_status", "not_in", "a")),
        [("conditions[0].value", ["a non-empty list", '"a"'])],
    ),
    (
        "in bad elements",
        one(c("total_asset_value", "in", [1, "2", 3, None])),
        [
            ("conditions[0].value[1]", ["list of numbers", '"2"']),
            ("conditions[0].value[3]", ["list of numbers", "null"]),
        ],
    ),
    (
        "recent_days negative",
        one(c("opened", "recent_days", -1)),
        [("conditions[0].value", ["whole number of days from 0", "-1"])],
    ),
    (
        "days_ago fraction",
        one(c("opened", "days_ago", 1.5)),
        [("conditions[0].value", ["whole number of days", "1.5"])],
    ),
    (
        "days_ago text",
        one(c("last_login", "days_ago", "7")),
        [("conditions[0].value", ["whole number of days", '"7"'])],
    ),
    (
        "days_ago_between reversed",
        one(c("opened", "days_ago_between", [30, 7])),
        [("conditions[0].value", ["0 <= a <= b", "first is greater", "[30, 7]"])],
    ),
    (
        "days_ago_between negative",
        one(c("opened", "days_ago_between", [-1, 7])),
        [("conditions[0].value[0]", ["whole numbers of days", "-1"])],
    ),
    (
        "is_null takes no value",
        one(c("vip", "is_null", True)),
        [("conditions[0].value", ["'is_null' on field 'vip' needs no value", "remove 'value'"])],
    ),
    (
        "deep location",
        one(c("vip", "is_null"), g("OR", c("vip", "is_null"), g("NOT", c("balance", ">", "x")))),
        [("conditions[1].conditions[1].conditions[0].value", ["needs a number"])],
    ),
]


@pytest.mark.parametrize(("name", "rule", "expected"), CASES, ids=[n for n, _, _ in CASES])
def test_problem_location_and_message(
    schema: LakeSchema, name: str, rule: Any, expected: list[tuple[str, list[str]]]
) -> None:
    problems = validate_rule(rule, schema)
    assert [p.location for p in problems] == [location for location, _ in expected]
    for problem, (_, fragments) in zip(problems, expected, strict=True):
        for fragment in fragments:
            assert fragment in problem.message, (fragment, problem.message)


def test_all_problems_are_reported_at_once(schema: LakeSchema) -> None:
    rule = g(
        "AND",
        c("nope", ">", 1),
        g("NOT", c("vip", "=", "yes"), g("OR")),
        c("opened", "days_ago", -3),
        c("kyc_status", "contains", "x", type="string"),  # valid
    )
    problems = validate_rule(rule, schema)
    assert [p.location for p in problems] == [
        "conditions[0].field",
        "conditions[1].conditions[0].value",
        "conditions[1].conditions[1].conditions",
        "conditions[2].value",
    ]


def test_valid_rules_have_no_problems(schema: LakeSchema) -> None:
    seed = (
        '{"logic": "AND", "conditions": ['
        '{"field": "total_asset_value", "operator": ">=", "value": 100000, "type": "number"},'
        '{"field": "kyc_status", "operator": "=", "value": "verified", "type": "string"}]}'
    )
    assert validate_rule(seed, schema) == []
    assert validate_rule(seed.encode("utf-8"), schema) == []
    parsed = parse_rule(seed, schema)
    assert validate_rule(parsed, schema) == []
    assert isinstance(parsed, Group)
    assert validate_rule(one(c("trade.name", "is_not_null", None)), schema) == []


def test_rule_validation_error_renders_every_problem(schema: LakeSchema) -> None:
    rule = one(c("nope", "=", 1), c("balance", "in_range", [3, 1]))
    with pytest.raises(RuleValidationError) as caught:
        parse_rule(rule, schema, tag_id=12, rule_id=34)
    error = caught.value
    assert isinstance(error, RuleError)
    assert (error.tag_id, error.rule_id, len(error.problems)) == (12, 34, 2)
    text = str(error)
    assert text.startswith("tag 12, rule 34 is invalid (2 problems)")
    assert "at conditions[0].field: unknown field 'nope'" in text
    assert "at conditions[1].value: 'in_range' on field 'balance'" in text


def test_invalid_rule_makes_the_tag_fail(schema: LakeSchema) -> None:
    result = compile_tag(5, [RuleSource(9, "{not json")], schema, AS_OF)
    assert isinstance(result, TagFailure)
    assert result.tag_id == 5
    assert [(p.rule_id, p.location) for p in result.problems] == [(9, "$")]
    assert "tag 5" in result.message() and "rule 9, at $" in result.message()


def test_one_invalid_rule_fails_the_whole_tag(schema: LakeSchema) -> None:
    valid = RuleSource(1, one(c("vip", "=", True)))
    invalid = RuleSource(2, one(c("vip", "=", True), c("kyc_status", "in", ["a", 7])))
    also_invalid = RuleSource(3, one(c("ghost", "is_null")))
    result = compile_tag(8, [valid, invalid, also_invalid], schema, AS_OF)
    assert isinstance(result, TagFailure)
    assert [(p.rule_id, p.location) for p in result.problems] == [
        (2, "conditions[1].value[1]"),
        (3, "conditions[0].field"),
    ]
    message = result.message()
    assert message.startswith("tag 8 is invalid (2 problems)")
    assert "rule 2, at conditions[1].value[1]: 'in' on field 'kyc_status'" in message
    assert "got 7" in message
    assert "rule 3, at conditions[0].field: unknown field 'ghost'" in message


@pytest.mark.spark
def test_the_valid_rule_alone_compiles(spark: Any, schema: LakeSchema) -> None:
    valid = RuleSource(1, one(c("vip", "=", True)))
    assert isinstance(compile_tag(8, [valid], schema, AS_OF), CompiledTag)


def test_absurdly_deep_nesting_is_a_problem_not_a_crash(schema: LakeSchema) -> None:
    depth = 5000
    text = '{"logic": "NOT", "conditions": [' * depth
    text += '{"field": "vip", "operator": "is_null"}' + "]}" * depth
    problems = validate_rule(text, schema)
    assert [(p.location, p.message) for p in problems] == [
        ("$", "the rule nests groups too deeply to be read")
    ]
