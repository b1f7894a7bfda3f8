"""What a rule may say, as data for editors: the lake's fields with their kinds, and each
operator with the column kinds it applies to and the shape of value it takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tagsys.lake.schema import VALUE_KINDS, LakeSchema
from tagsys.rules.model import OPERATOR_KINDS, OPERATORS
from tagsys.rules.validate import (
    DAY_COUNT_OPERATORS,
    DAY_PAIR_OPERATORS,
    LIST_OPERATORS,
    NO_VALUE_OPERATORS,
    RANGE_OPERATORS,
    RuleProblem,
    rule_warnings,
    validate_rule,
)

ValueShape = Literal["scalar", "list", "range", "days", "day_range", "none"]


def value_shape(operator: str) -> ValueShape:
    """What an operator's `value` is: one literal, a list, `[low, high]`, a day count,
    `[a, b]` day counts, or nothing."""
    if operator in NO_VALUE_OPERATORS:
        return "none"
    if operator in LIST_OPERATORS:
        return "list"
    if operator in RANGE_OPERATORS:
        return "range"
    if operator in DAY_COUNT_OPERATORS:
        return "days"
    if operator in DAY_PAIR_OPERATORS:
        return "day_range"
    return "scalar"


def operators() -> list[dict[str, Any]]:
    """Every operator, in the language's order, with its kinds and value shape."""
    return [
        {
            "operator": op,
            "kinds": [k for k in VALUE_KINDS if k in OPERATOR_KINDS[op]],
            "value": value_shape(op),
        }
        for op in OPERATORS
    ]


@dataclass(frozen=True)
class RuleField:
    """A column as a rule names it: `column`, or `table.column` when several tables have it."""

    field: str
    table: str
    column: str
    kind: str | None
    data_type: str

    def view(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "table": self.table,
            "column": self.column,
            "kind": self.kind,
            "data_type": self.data_type,
        }


def rule_fields(schema: LakeSchema) -> list[RuleField]:
    """Every lake column but the user id, by table then column; `kind` None: not usable."""
    counts: dict[str, int] = {}
    for table in schema.tables.values():
        for name in table:
            counts[name] = counts.get(name, 0) + 1
    found = []
    for table_name in sorted(schema.tables):
        for column in sorted(schema.tables[table_name].values(), key=lambda c: c.name):
            if column.name == schema.user_id_column:
                continue
            field = column.qualified if counts[column.name] > 1 else column.name
            found.append(RuleField(field, table_name, column.name, column.kind, column.data_type))
    return found


def check_rules(rules: list[Any], schema: LakeSchema) -> list[tuple[str, RuleProblem]]:
    """Every error and warning of each rule, located as `rules[1].conditions[0].value`."""
    found = []
    for index, rule in enumerate(rules):
        problems = validate_rule(rule, schema)
        problems += rule_warnings(rule, schema) if not problems else []
        found += [(located(f"rules[{index}]", p.location), p) for p in problems]
    return found


def located(prefix: str, location: str) -> str:
    """A location inside one rule (`$`, `conditions[0].value`) inside a document."""
    if location.startswith("$"):
        return prefix + location[1:]
    return f"{prefix}.{location}"
