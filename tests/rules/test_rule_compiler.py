"""Every operator on every kind it supports, through the compiler, on a small Spark frame.

All cases are evaluated in one Spark job (module fixture); each case then asserts its own
set of matching users, and that the reference evaluator agrees on every user.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tagsys.lake.schema import LakeColumn, LakeSchema
from tagsys.rules.compiler import CompiledTag, RuleSource, TagFailure, compile_tag, rule_columns
from tagsys.rules.model import Group
from tagsys.rules.reference import evaluate_rule

AS_OF = date(2024, 3, 15)  # 30 days before is 2024-02-14 (leap year)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def user(uid: str, **values: Any) -> dict[str, Any]:
    return {"uid": uid, **{f"acct__{k}": v for k, v in values.items()}}


USERS = [
    user(
        "u1",
        total_asset_value=100000,
        balance=0.5,
        kyc_status="verified",
        name="100%_off",
        opened=date(2024, 3, 15),
        last_login=ts("2024-03-15T23:59:59"),
        vip=True,
    ),
    user(
        "u2",
        total_asset_value=99999,
        balance=-1.0,
        kyc_status="Verified",
        name='say "hi" \\ ok',
        opened=date(2024, 2, 14),
        last_login=ts("2024-02-14T00:00:00"),
        vip=False,
    ),
    user("u3"),  # every column null (e.g. the user is missing from the table)
    user(
        "u4",
        total_asset_value=250000,
        balance=1e6,
        kyc_status="高净值用户",
        name="100x off",
        opened=date(2024, 3, 16),
        last_login=ts("2024-03-16T00:00:00"),
        vip=True,
    ),
    user(
        "u5",
        total_asset_value=0,
        balance=100000.0,
        kyc_status="pending",
        name="a_b",
        opened=date(2024, 2, 13),
        last_login=ts("2024-02-13T23:59:59"),
        vip=False,
    ),
    user(
        "u6",
        total_asset_value=-5,
        balance=2.5,
        kyc_status="",
        name="'single'",
        opened=date(2023, 3, 15),
        last_login=ts("2023-03-15T12:00:00"),
        vip=None,
    ),
]
ALL = {"u1", "u2", "u3", "u4", "u5", "u6"}
NOT_NULL = ALL - {"u3"}
for row in USERS:
    row["trade__name"] = "x"
    row["trade__trade_count_30d"] = 50 if row["uid"] in ("u1", "u2") else None


def c(field: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    cond = {"field": field, "operator": operator, **extra}
    return cond if value is None else {**cond, "value": value}


def g(logic: str, *conditions: Any) -> dict[str, Any]:
    return {"logic": logic, "conditions": list(conditions)}


CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    # numbers (bigint)
    ("num >= threshold", c("total_asset_value", ">=", 100000, type="number"), {"u1", "u4"}),
    ("num > threshold", c("total_asset_value", ">", 100000), {"u4"}),
    ("num < threshold", c("total_asset_value", "<", 100000), {"u2", "u5", "u6"}),
    ("num <= threshold", c("total_asset_value", "<=", 100000), {"u1", "u2", "u5", "u6"}),
    ("num =", c("total_asset_value", "=", 100000), {"u1"}),
    ("num != skips null", c("total_asset_value", "!=", 100000), NOT_NULL - {"u1"}),
    ("num in", c("total_asset_value", "in", [0, 100000]), {"u1", "u5"}),
    ("num not_in", c("total_asset_value", "not_in", [0, 100000]), {"u2", "u4", "u6"}),
    ("num in_range inclusive", c("total_asset_value", "in_range", [99999, 100000]), {"u1", "u2"}),
    (
        "num not_in_range",
        c("total_asset_value", "not_in_range", [99999, 100000]),
        {"u4", "u5", "u6"},
    ),
    ("num is_null", c("total_asset_value", "is_null"), {"u3"}),
    ("num is_not_null", c("total_asset_value", "is_not_null"), NOT_NULL),
    ("int col vs float value", c("total_asset_value", ">=", 99999.5), {"u1", "u4"}),
    ("negative value", c("total_asset_value", "<", -1), {"u6"}),
    # numbers (double)
    ("double =", c("balance", "=", 0.5), {"u1"}),
    ("double in_range", c("balance", "in_range", [-1, 0.5]), {"u1", "u2"}),
    ("double > int value", c("balance", ">", 100000), {"u4"}),
    ("double in", c("balance", "in", [2.5, 100000]), {"u5", "u6"}),
    # strings
    ("str = is case sensitive", c("kyc_status", "=", "verified", type="string"), {"u1"}),
    ("str !=", c("kyc_status", "!=", "verified"), NOT_NULL - {"u1"}),
    ("str = empty", c("kyc_status", "=", ""), {"u6"}),
    ("str in chinese", c("kyc_status", "in", ["verified", "高净值用户"]), {"u1", "u4"}),
    ("str not_in", c("kyc_status", "not_in", ["verified", "高净值用户"]), {"u2", "u5", "u6"}),
    ("str contains chinese", c("kyc_status", "contains", "净值"), {"u4"}),
    ("str contains empty", c("kyc_status", "contains", ""), NOT_NULL),
    ("str starts_with chinese", c("kyc_status", "starts_with", "高"), {"u4"}),
    ("str ends_with", c("kyc_status", "ends_with", "ied"), {"u1", "u2"}),
    ("str not_contains", c("kyc_status", "not_contains", "erified"), {"u4", "u5", "u6"}),
    ("str > is code point order", c("kyc_status", ">", "pending"), {"u1", "u4"}),
    ("str <=", c("kyc_status", "<=", "pending"), {"u2", "u5", "u6"}),
    ("percent is literal", c("acct.name", "contains", "%"), {"u1"}),
    ("percent underscore literal", c("acct.name", "contains", "0%_"), {"u1"}),
    ("underscore is literal", c("acct.name", "contains", "_"), {"u1", "u5"}),
    ("starts_with percent", c("acct.name", "starts_with", "100%"), {"u1"}),
    ("ends_with underscore", c("acct.name", "ends_with", "_off"), {"u1"}),
    ("not_contains percent", c("acct.name", "not_contains", "%"), NOT_NULL - {"u1"}),
    ("double quotes", c("acct.name", "contains", '"hi"'), {"u2"}),
    ("backslash", c("acct.name", "contains", "\\"), {"u2"}),
    ("backslash and space", c("acct.name", "ends_with", "\\ ok"), {"u2"}),
    ("single quotes", c("acct.name", "=", "'single'"), {"u6"}),
    ("sql-ish text is a value", c("acct.name", "=", "x' OR '1'='1"), set()),
    # dates (date column)
    ("date =", c("opened", "=", "2024-03-15", type="date"), {"u1"}),
    ("date !=", c("opened", "!=", "2024-03-15"), NOT_NULL - {"u1"}),
    ("date >", c("opened", ">", "2024-03-15"), {"u4"}),
    ("date <", c("opened", "<", "2024-02-14"), {"u5", "u6"}),
    ("date in", c("opened", "in", ["2024-03-16", "2023-03-15"]), {"u4", "u6"}),
    ("date not_in", c("opened", "not_in", ["2024-03-16"]), NOT_NULL - {"u4"}),
    ("recent_days 30 inclusive", c("opened", "recent_days", 30), {"u1", "u2"}),
    ("recent_days 0 is as_of", c("opened", "recent_days", 0), {"u1"}),
    ("days_ago 30", c("opened", "days_ago", 30), {"u2", "u5", "u6"}),
    ("days_ago 0", c("opened", "days_ago", 0), {"u1", "u2", "u5", "u6"}),
    ("days_ago_between", c("opened", "days_ago_between", [30, 31]), {"u2", "u5"}),
    ("days_ago_between 0 0", c("opened", "days_ago_between", [0, 0]), {"u1"}),
    ("date_between", c("opened", "date_between", ["2024-02-14", "2024-03-15"]), {"u1", "u2"}),
    ("date in_range", c("opened", "in_range", ["2024-02-14", "2024-03-15"]), {"u1", "u2"}),
    (
        "date not_in_range",
        c("opened", "not_in_range", ["2024-02-14", "2024-03-15"]),
        {"u4", "u5", "u6"},
    ),
    ("date is_null", c("opened", "is_null"), {"u3"}),
    # dates (timestamp column: compared on the date part)
    ("ts = date part", c("last_login", "=", "2024-03-15"), {"u1"}),
    ("ts recent_days", c("last_login", "recent_days", 30), {"u1", "u2"}),
    ("ts days_ago", c("last_login", "days_ago", 30), {"u2", "u5", "u6"}),
    ("ts date_between", c("last_login", "date_between", ["2024-03-15", "2024-03-15"]), {"u1"}),
    ("ts <=", c("last_login", "<=", "2024-02-14"), {"u2", "u5", "u6"}),
    ("ts is_not_null", c("last_login", "is_not_null"), NOT_NULL),
    # booleans
    ("bool = true", c("vip", "=", True, type="boolean"), {"u1", "u4"}),
    ("bool = false", c("vip", "=", False), {"u2", "u5"}),
    ("bool != true", c("vip", "!=", True), {"u2", "u5"}),
    ("bool in", c("vip", "in", [True]), {"u1", "u4"}),
    ("bool not_in", c("vip", "not_in", [True]), {"u2", "u5"}),
    ("bool is_null", c("vip", "is_null"), {"u3", "u6"}),
    # other tables, qualified fields
    ("other table", c("trade_count_30d", ">=", 50), {"u1", "u2"}),
    ("qualified other table", c("trade.name", "=", "x"), ALL),
]

GROUP_CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    (
        "seed flat format",
        g(
            "AND",
            c("total_asset_value", ">=", 100000, type="number"),
            c("kyc_status", "=", "verified", type="string"),
        ),
        {"u1"},
    ),
    ("NOT of null condition is true", g("NOT", c("kyc_status", "=", "verified")), ALL - {"u1"}),
    ("NOT of not_contains on null", g("NOT", c("kyc_status", "not_contains", "x")), {"u3"}),
    ("NOT ands its conditions", g("NOT", c("vip", "=", True), c("balance", ">", 1)), ALL - {"u4"}),
    ("OR", g("OR", c("vip", "=", True), c("kyc_status", "=", "")), {"u1", "u4", "u6"}),
    (
        "nested",
        g(
            "AND",
            c("total_asset_value", "is_not_null"),
            g("OR", c("vip", "=", False), g("NOT", c("opened", "recent_days", 30))),
        ),
        {"u2", "u4", "u5", "u6"},
    ),
    ("deep NOT NOT", g("NOT", g("NOT", c("vip", "=", True))), {"u1", "u4"}),
]

ALL_CASES = CASES + [(name, rule, want) for name, rule, want in GROUP_CASES]


def as_rule(rule: dict[str, Any]) -> dict[str, Any]:
    return rule if "logic" in rule else g("AND", rule)


@pytest.fixture(scope="module")
def results(spark_eval: Any, schema: LakeSchema) -> dict[str, set[str]]:
    compiled = [
        compile_tag(i, [RuleSource(1, as_rule(rule))], schema, AS_OF)
        for i, (_, rule, _) in enumerate(ALL_CASES)
    ]
    assert all(isinstance(tag, CompiledTag) for tag in compiled), [
        tag.message() for tag in compiled if isinstance(tag, TagFailure)
    ]
    columns = sorted(schema.tables["acct"].values(), key=lambda col: col.name)
    columns += sorted(schema.tables["trade"].values(), key=lambda col: col.name)
    values = spark_eval(columns, USERS, [tag.column for tag in compiled])  # type: ignore[union-attr]
    found: dict[str, set[str]] = {}
    for index, (name, _, _) in enumerate(ALL_CASES):
        per_user = {row["uid"]: values[n][index] for n, row in enumerate(USERS)}
        assert all(v in (True, False) for v in per_user.values()), (name, per_user)
        found[name] = {uid for uid, matched in per_user.items() if matched}
    return found


@pytest.mark.spark
@pytest.mark.parametrize(("name", "rule", "expected"), ALL_CASES, ids=[n for n, _, _ in ALL_CASES])
def test_operator_on_spark(
    results: dict[str, set[str]], name: str, rule: Any, expected: set[str]
) -> None:
    assert results[name] == expected


@pytest.mark.parametrize(("name", "rule", "expected"), ALL_CASES, ids=[n for n, _, _ in ALL_CASES])
def test_reference_agrees(schema: LakeSchema, name: str, rule: Any, expected: set[str]) -> None:
    parsed = Group.model_validate(as_rule(rule))
    assert {row["uid"] for row in USERS if evaluate_rule(parsed, row, schema, AS_OF)} == expected


@pytest.mark.spark
def test_rules_of_one_tag_are_ored_and_zero_rules_match_no_one(
    spark_eval: Any, schema: LakeSchema
) -> None:
    two = compile_tag(
        7,
        [
            RuleSource(1, g("AND", c("vip", "=", True))),
            RuleSource(2, g("AND", c("kyc_status", "=", ""))),
        ],
        schema,
        AS_OF,
    )
    none = compile_tag(8, [], schema, AS_OF)
    assert isinstance(two, CompiledTag) and isinstance(none, CompiledTag)
    assert none.columns == frozenset() and not none.uses_relative_dates
    columns = [schema.resolve("vip"), schema.resolve("kyc_status")]
    values = spark_eval(columns, USERS, [two.column, none.column])
    assert {USERS[n]["uid"] for n, (hit, _) in enumerate(values) if hit} == {"u1", "u4", "u6"}
    assert [miss for _, miss in values] == [False] * len(USERS)


def test_compiled_tag_reports_columns_and_relative_dates(schema: LakeSchema) -> None:
    tag = compile_tag(
        3,
        [
            RuleSource(1, g("AND", c("vip", "=", True))),
            RuleSource(2, g("OR", c("trade.name", "=", "x"), c("opened", "recent_days", 7))),
        ],
        schema,
        AS_OF,
    )
    assert isinstance(tag, CompiledTag)
    assert tag.tag_id == 3
    assert {col.qualified for col in tag.columns} == {"acct.vip", "trade.name", "acct.opened"}
    assert tag.uses_relative_dates
    fixed = compile_tag(4, [RuleSource(1, g("AND", c("opened", "days_ago", 7)))], schema, AS_OF)
    absolute = compile_tag(
        5, [RuleSource(1, g("AND", c("opened", ">", "2024-01-01")))], schema, AS_OF
    )
    assert isinstance(fixed, CompiledTag) and fixed.uses_relative_dates
    assert isinstance(absolute, CompiledTag) and not absolute.uses_relative_dates


def test_rule_columns(schema: LakeSchema) -> None:
    rule = g(
        "AND", c("balance", ">", 1), g("NOT", c("trade.name", "is_null"), c("balance", "<", 9))
    )
    assert rule_columns(rule, schema) == frozenset(
        {schema.resolve("balance"), schema.resolve("trade.name")}
    )


def test_text_operators_never_use_like_and_values_are_literals(schema: LakeSchema) -> None:
    for operator in ("contains", "starts_with", "ends_with", "not_contains"):
        column = compile_tag(
            1, [RuleSource(1, g("AND", c("acct.name", operator, "a%_b")))], schema, AS_OF
        )
        assert isinstance(column, CompiledTag)
        text = str(column.column).lower()
        assert "like" not in text and "a%_b" in text, text


@pytest.mark.spark
def test_odd_column_names_are_referenced_literally(spark_eval: Any) -> None:
    columns = [
        LakeColumn("t", "a.b", "number", "bigint"),
        LakeColumn("t", "x`y", "string", "string"),
        LakeColumn("用户", "资产", "number", "bigint"),
    ]
    odd = LakeSchema.from_columns(columns)
    rule = g("AND", c("t.a.b", ">", 1), c("x`y", "=", "q"), c("资产", "in_range", [1, 5]))
    tag = compile_tag(1, [RuleSource(1, rule)], odd, AS_OF)
    assert isinstance(tag, CompiledTag)
    rows = [
        {"t__a.b": 2, "t__x`y": "q", "用户__资产": 5},
        {"t__a.b": 1, "t__x`y": "q", "用户__资产": 5},
    ]
    assert spark_eval(columns, rows, [tag.column]) == [[True], [False]]
