"""What editors learn about the rule language (`rules/vocabulary.py`): fields, operators, and
rules checked with their problems located as a save locates them. Pure: no Spark, no store."""

from __future__ import annotations

from tagsys.lake.schema import LakeSchema
from tagsys.rules.model import OPERATORS
from tagsys.rules.vocabulary import check_rules, located, operators, rule_fields, value_shape


def test_fields_name_ambiguous_columns_by_table_and_keep_the_kind(schema: LakeSchema) -> None:
    fields = {f.field: f for f in rule_fields(schema)}
    assert "acct.name" in fields and "trade.name" in fields and "name" not in fields
    assert fields["total_asset_value"].view() == {
        "field": "total_asset_value",
        "table": "acct",
        "column": "total_asset_value",
        "kind": "number",
        "data_type": "bigint",
    }
    assert fields["labels"].kind is None  # listed, not usable in rules
    assert all(f.column != schema.user_id_column for f in fields.values())
    assert [f.table for f in rule_fields(schema)] == sorted(f.table for f in rule_fields(schema))


def test_every_operator_is_listed_once_with_a_value_shape() -> None:
    listed = operators()
    assert [o["operator"] for o in listed] == list(OPERATORS)
    shapes = {o["operator"]: o["value"] for o in listed}
    assert shapes["="] == "scalar" and shapes["not_in"] == "list"
    assert shapes["date_between"] == "range" and shapes["is_not_null"] == "none"
    assert value_shape("days_ago") == "days" and value_shape("days_ago_between") == "day_range"
    assert {o["operator"]: o["kinds"] for o in listed}["starts_with"] == ["string"]


def test_problems_are_located_in_the_list_of_rules(schema: LakeSchema) -> None:
    good = {"logic": "AND", "conditions": [{"field": "balance", "operator": ">", "value": 1}]}
    bad = {
        "logic": "OR",
        "conditions": [good, {"logic": "AND", "conditions": [{"field": "nope", "operator": "="}]}],
    }
    found = [(where, p.severity) for where, p in check_rules([good, bad, "{"], schema)]
    assert ("rules[1].conditions[1].conditions[0].field", "error") in found
    assert all(not where.startswith("rules[0]") for where, _ in found)
    assert any(where == "rules[2]" for where, _ in found)  # not JSON: the rule as a whole


def test_text_read_as_dates_is_a_warning_of_a_valid_rule(schema: LakeSchema) -> None:
    rule = {
        "logic": "AND",
        "conditions": [
            {"field": "kyc_status", "operator": "recent_days", "value": 3, "type": "date"}
        ],
    }
    [(where, problem)] = check_rules([rule], schema)
    assert (where, problem.severity) == ("rules[0].conditions[0].type", "warning")


def test_located_joins_a_rule_location_to_its_place() -> None:
    assert located("rules[2]", "$") == "rules[2]"
    assert located("rules[0]", "conditions[1].value") == "rules[0].conditions[1].value"
    assert located("rules[0]", "$[3]") == "rules[0][3]"
