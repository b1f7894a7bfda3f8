"""Dates stored as text (SPEC 3): `date` conditions on string columns parse ISO dates.

Hive jobs and the original system's generator write dates as `YYYY-MM-DD` strings. Such a
value is read as its date; a value that is not one makes every condition but is_null /
is_not_null (which look at the stored text) false, and is counted by runs.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagsys.lake.dates import parse_date_text
from tagsys.lake.schema import LakeColumn, LakeSchema
from tagsys.rules.compiler import CompiledTag, RuleSource, compile_tag, unparsed_date
from tagsys.rules.explain import explain_rule
from tagsys.rules.model import Group
from tagsys.rules.reference import evaluate_rule
from tagsys.rules.validate import rule_warnings, validate_rule

AS_OF = date(2024, 3, 15)
TEXT = LakeColumn("user_basic_info", "registration_date", "string", "string")
REAL = LakeColumn("user_basic_info", "opened", "date", "date")
SCHEMA = LakeSchema.from_columns([TEXT, REAL])

DAY_OFFSETS = [-40, -31, -30, -29, -8, -7, -1, 0, 1]
ISO = [(AS_OF + timedelta(days=k)).isoformat() for k in DAY_OFFSETS]
DATETIMES = [f"{d} 00:00:00" for d in ISO[:3]] + [f"{d}T23:59:59.123456" for d in ISO[3:6]]
DATETIMES += [f"{ISO[6]} 12:30:00.5"]
NOT_DATES = [
    "",
    " ",
    "garbage",
    "2024-02-30",
    "2024-13-01",
    "2024/03/10",
    "10-03-2024",
    "2024-3-1",
    " 2024-03-10",
    "2024-03-10 ",
    "2024-03-10Z",
    "2024-03-10 24:00:00",
    "2024-03-10 08:30",
    "2024-03-10T08:30:00+08:00",
    "0000-01-01",
    "20240310",
    "２０２４-03-10",
    "2024-03-10\n",  # a final line break: Java's and Python's `$` each let some through
    "2024-03-10\r",
    "2024-03-10\r\n",
    "2024-03-10\u2028",
    "2024-03-10 08:30:00\r",
]
TEXTS = ISO + DATETIMES + NOT_DATES

DATE_OPS = ["=", "!=", ">", "<", ">=", "<=", "in", "not_in", "in_range", "not_in_range"]
DATE_OPS += ["date_between", "recent_days", "days_ago", "days_ago_between"]
DAY_COUNTS = [0, 1, 7, 30, 31]


def rule(operator: str, value: Any = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"field": "registration_date", "operator": operator, "type": "date"}
    if value is not None:
        condition["value"] = value
    return {"logic": "AND", "conditions": [condition]}


def test_parse_date_text_reads_iso_dates_and_datetimes_only() -> None:
    assert parse_date_text("2024-03-10") == date(2024, 3, 10)
    assert parse_date_text("2024-03-10 08:30:00") == date(2024, 3, 10)
    assert parse_date_text("2024-03-10T23:59:59.123456") == date(2024, 3, 10)
    assert [parse_date_text(t) for t in NOT_DATES] == [None] * len(NOT_DATES)
    assert parse_date_text(None) is None


@pytest.mark.spark
@pytest.mark.parametrize("operator", [*DATE_OPS, "is_null", "is_not_null"])
def test_every_date_operator_on_text_agrees_with_the_reference(
    spark_eval: Any, operator: str
) -> None:
    values = {
        "recent_days": DAY_COUNTS,
        "days_ago": DAY_COUNTS,
        "days_ago_between": [[0, 7], [1, 30], [7, 31]],
        "in_range": [[ISO[1], ISO[6]], [ISO[4], ISO[8]]],
        "not_in_range": [[ISO[1], ISO[6]]],
        "date_between": [[ISO[2], ISO[7]]],
        "in": [[ISO[0], ISO[7]]],
        "not_in": [[ISO[0], ISO[7]]],
        "is_null": [None],
        "is_not_null": [None],
    }.get(operator, ISO[::2])
    rules = [rule(operator, value) for value in values]
    compiled = [compile_tag(i, [RuleSource(i, r)], SCHEMA, AS_OF) for i, r in enumerate(rules)]
    assert all(isinstance(c, CompiledTag) for c in compiled)
    rows = [{TEXT.alias: text} for text in [*TEXTS, None]]

    got = spark_eval([TEXT], rows, [c.column for c in compiled])  # type: ignore[union-attr]

    for row, results in zip(rows, got, strict=True):
        for r, result in zip(rules, results, strict=True):
            want = evaluate_rule(Group.model_validate(r), row, SCHEMA, AS_OF)
            assert result is want, f"{json.dumps(r)} on {row}"
            if row[TEXT.alias] in NOT_DATES and operator != "is_not_null":
                assert result is False, f"{json.dumps(r)} on {row}: not a date, so false"


def test_known_answers() -> None:
    def holds(r: dict[str, Any], text: str | None) -> bool:
        return evaluate_rule(Group.model_validate(r), {TEXT.alias: text}, SCHEMA, AS_OF)

    assert holds(rule("recent_days", 7), "2024-03-08 23:59:59")
    assert not holds(rule("recent_days", 7), "2024-03-07")
    assert holds(rule("days_ago", 30), "2024-02-14")
    assert not holds(rule("recent_days", 7), "garbage")
    assert not holds(rule("days_ago", 0), "garbage")
    assert holds(rule("is_not_null"), "garbage")  # the stored text is there
    assert not holds(rule("is_null"), "")
    assert holds(rule("is_null"), None)
    assert holds(rule("not_in", ["2024-03-10"]), "2024-03-11")
    assert not holds(rule("not_in", ["2024-03-10"]), "not a date")


texts = st.sampled_from(TEXTS)


@st.composite
def text_date_rules(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(st.sampled_from(DATE_OPS))
    iso = st.sampled_from(ISO)
    if operator in ("recent_days", "days_ago"):
        value: Any = draw(st.sampled_from(DAY_COUNTS))
    elif operator == "days_ago_between":
        value = sorted(draw(st.tuples(*[st.sampled_from(DAY_COUNTS)] * 2)))
    elif operator in ("in_range", "not_in_range", "date_between"):
        value = sorted(draw(st.tuples(iso, iso)))
    elif operator in ("in", "not_in"):
        value = draw(st.lists(iso, min_size=1, max_size=3))
    else:
        value = draw(iso)
    logic = draw(st.sampled_from(["AND", "OR", "NOT"]))
    other = {"field": "opened", "operator": "<=", "value": ISO[5]}
    return {"logic": logic, "conditions": [rule(operator, value)["conditions"][0], other]}


@pytest.mark.spark
@settings(
    max_examples=5,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    table=st.lists(
        st.fixed_dictionaries(
            {TEXT.alias: st.one_of(st.none(), texts), REAL.alias: st.sampled_from([None, AS_OF])}
        ),
        min_size=1,
        max_size=8,
    ),
    batch=st.lists(text_date_rules(), min_size=20, max_size=30),
)
def test_random_text_date_rules_agree_with_the_reference(
    spark_eval: Any, table: list[dict[str, Any]], batch: list[dict[str, Any]]
) -> None:
    compiled = [compile_tag(i, [RuleSource(i, r)], SCHEMA, AS_OF) for i, r in enumerate(batch)]
    values = spark_eval([TEXT, REAL], table, [c.column for c in compiled])  # type: ignore[union-attr]
    for row, row_values in zip(table, values, strict=True):
        for r, got in zip(batch, row_values, strict=True):
            want = evaluate_rule(Group.model_validate(r), row, SCHEMA, AS_OF)
            assert got is want, f"{json.dumps(r)} on {row}"


@pytest.mark.spark
def test_unparsed_values_are_flagged_for_the_run_summary(spark_eval: Any) -> None:
    rows = [{TEXT.alias: text} for text in [*TEXTS, None]]

    flags = [r[0] for r in spark_eval([TEXT], rows, [unparsed_date(TEXT)])]

    expected = [text in NOT_DATES for text in [*TEXTS, None]]
    assert flags == expected


def test_validate_accepts_a_text_date_with_a_warning_and_still_refuses_other_types() -> None:
    text_date = rule("recent_days", 30)

    assert validate_rule(text_date, SCHEMA) == []
    warnings = rule_warnings(text_date, SCHEMA)
    assert [(w.location, w.severity) for w in warnings] == [("conditions[0].type", "warning")]
    assert "user_basic_info.registration_date" in warnings[0].message
    as_number = {"logic": "AND", "conditions": [{**text_date["conditions"][0], "type": "number"}]}
    assert "contradicts" in validate_rule(as_number, SCHEMA)[0].message
    assert validate_rule(rule("recent_days", "30"), SCHEMA)  # a date rule's values still checked
    untyped = {
        "logic": "AND",
        "conditions": [{"field": "registration_date", "operator": "=", "value": "2024-03-10"}],
    }
    assert validate_rule(untyped, SCHEMA) == [] and rule_warnings(untyped, SCHEMA) == []


def test_explain_shows_the_parsed_date_and_the_raw_text() -> None:
    lines = explain_rule(
        rule("recent_days", 7), {TEXT.alias: "2024-03-10 08:30:00"}, SCHEMA, AS_OF
    ).render()
    assert '2024-03-10 (read from the text "2024-03-10 08:30:00") -> true' in lines[2]

    lines = explain_rule(rule("recent_days", 7), {TEXT.alias: "soon"}, SCHEMA, AS_OF).render()
    assert 'text "soon", which is not a date' in lines[2] and lines[2].endswith("-> false")
