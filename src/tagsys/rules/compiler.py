"""Compiling a tag's rules into one boolean Spark Column over the engine's joined frame.

The frame has one row per user and one column per lake column, named `LakeColumn.alias`.
Only `pyspark.sql.functions` builds the Column: values become `F.lit` literals, never SQL
text, and no Python UDFs run. Every condition yields true or false, never null (SPEC 3:
a condition on null is false, except `is_null`), so NOT and OR behave two-valued.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import reduce
from typing import TYPE_CHECKING, Any

from tagsys.lake.dates import text_to_date
from tagsys.lake.schema import LakeColumn, LakeSchema
from tagsys.rules.model import (
    RELATIVE_DATE_OPERATORS,
    Condition,
    Group,
    condition_kind,
    iter_conditions,
    parse_iso_date,
    reads_text_as_date,
)
from tagsys.rules.validate import (
    RuleInput,
    RuleProblem,
    RuleValidationError,
    parse_rule,
    render_problems,
)

if TYPE_CHECKING:
    from pyspark.sql import Column


@dataclass(frozen=True)
class RuleSource:
    """One active rule of a tag, as stored (`tag_rules.rule_id`, `rule_conditions`)."""

    rule_id: int
    conditions: RuleInput


@dataclass(frozen=True)
class CompiledTag:
    """A tag ready to evaluate: `column` is true for the users the tag applies to."""

    tag_id: int
    column: Column
    columns: frozenset[LakeColumn]
    uses_relative_dates: bool
    text_dates: frozenset[LakeColumn] = frozenset()
    """Text columns its date conditions parse (unparseable values are counted by runs)."""


@dataclass(frozen=True)
class TagFailure:
    """A tag whose rules are invalid: it is not computed and its assignments stay as they are."""

    tag_id: int
    problems: tuple[RuleProblem, ...]

    def message(self) -> str:
        return render_problems(self.problems, tag_id=self.tag_id)


def compile_tag(
    tag_id: int, rules: Sequence[RuleSource], schema: LakeSchema, as_of: date
) -> CompiledTag | TagFailure:
    """OR of the tag's rules; a TagFailure (fail closed) if any one of them is invalid."""
    groups: list[Group] = []
    problems: list[RuleProblem] = []
    for source in rules:
        try:
            groups.append(parse_rule(source.conditions, schema, rule_id=source.rule_id))
        except RuleValidationError as exc:
            problems += [problem.with_rule(source.rule_id) for problem in exc.problems]
    if problems:
        return TagFailure(tag_id, tuple(problems))
    return CompiledTag(
        tag_id=tag_id,
        column=_any_of([compile_rule(group, schema, as_of) for group in groups]),
        columns=frozenset().union(*(_group_columns(group, schema) for group in groups)),
        uses_relative_dates=any(
            c.operator in RELATIVE_DATE_OPERATORS for g in groups for c in iter_conditions(g)
        ),
        text_dates=frozenset(
            column
            for g in groups
            for c in iter_conditions(g)
            if reads_text_as_date(c, column := schema.resolve(c.field))
        ),
    )


def rule_columns(rule: RuleInput, schema: LakeSchema) -> frozenset[LakeColumn]:
    """The lake columns one rule reads (RuleValidationError if the rule is invalid)."""
    return _group_columns(parse_rule(rule, schema), schema)


def compile_rule(rule: Group, schema: LakeSchema, as_of: date) -> Column:
    """One validated rule as a boolean Column that is never null."""
    parts = [
        compile_rule(node, schema, as_of)
        if isinstance(node, Group)
        else _condition(node, schema, as_of)
        for node in rule.conditions
    ]
    if rule.logic == "OR":
        return reduce(operator.or_, parts)
    both = reduce(operator.and_, parts)
    return ~both if rule.logic == "NOT" else both


def _any_of(columns: list[Column]) -> Column:
    from pyspark.sql import functions as F

    return reduce(operator.or_, columns) if columns else F.lit(False)


def _group_columns(group: Group, schema: LakeSchema) -> frozenset[LakeColumn]:
    return frozenset(schema.resolve(c.field) for c in iter_conditions(group))


def column_ref(column: LakeColumn) -> Column:
    """The column in the engine's frame; quoted if its name has a dot or backtick in it."""
    from pyspark.sql import functions as F

    alias = column.alias
    needs_quotes = "." in alias or "`" in alias
    return F.col("`" + alias.replace("`", "``") + "`" if needs_quotes else alias)


def _condition(condition: Condition, schema: LakeSchema, as_of: date) -> Column:
    from pyspark.sql import functions as F

    column = schema.resolve(condition.field)
    ref = column_ref(column)
    if condition.operator == "is_null":
        return ref.isNull()
    if condition.operator == "is_not_null":
        return ref.isNotNull()
    value: Any = condition.value
    if reads_text_as_date(condition, column):
        ref = text_to_date(ref)
    if condition_kind(condition, column) == "date":
        ref = F.to_date(ref)  # DateType unchanged; TimestampType: its date in the session zone
        if condition.operator not in RELATIVE_DATE_OPERATORS:
            value = _dates(value)
    predicate = _predicate(condition.operator, ref, value, as_of)
    if _beyond_bigint(value):
        # Spark decides an integer column against an out-of-range decimal at analysis, and
        # for null values too (`n < 2^63` is true): nulls are kept out explicitly.
        predicate = F.when(ref.isNotNull(), predicate)
    return F.coalesce(predicate, F.lit(False))


def unparsed_date(column: LakeColumn) -> Column:
    """True where a text column read as dates holds a value that is not such a date."""
    ref = column_ref(column)
    return ref.isNotNull() & text_to_date(ref).isNull()


def _dates(value: Any) -> Any:
    if isinstance(value, list):
        return [parse_iso_date(item) for item in value]
    return parse_iso_date(value)


_COMPARE: dict[str, Callable[[Column, Column], Column]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
# Column.contains/startswith/endswith are literal text tests (no LIKE wildcards).
_TEXT_METHOD = {"contains": "contains", "starts_with": "startswith", "ends_with": "endswith"}
_NEGATION_OF = {"not_in": "in", "not_contains": "contains", "not_in_range": "in_range"}


def _predicate(op: str, ref: Column, value: Any, as_of: date) -> Column:
    if op in _NEGATION_OF:
        return ~_predicate(_NEGATION_OF[op], ref, value, as_of)
    if op in _COMPARE:
        return _COMPARE[op](ref, _lit(value))
    if op in _TEXT_METHOD:
        text_test: Callable[[Column], Column] = getattr(ref, _TEXT_METHOD[op])
        return text_test(_lit(value))
    if op == "in":
        return ref.isin(*[_lit(item) for item in value])
    if op in ("in_range", "date_between"):
        return ref.between(_lit(value[0]), _lit(value[1]))
    return _relative(op, ref, value, as_of)


def _relative(op: str, ref: Column, value: Any, as_of: date) -> Column:
    if op == "days_ago":
        return ref <= _lit(as_of - timedelta(days=value))
    if op == "recent_days":
        low, high = as_of - timedelta(days=value), as_of
    else:  # days_ago_between [a, b]
        low, high = as_of - timedelta(days=value[1]), as_of - timedelta(days=value[0])
    return ref.between(_lit(low), _lit(high))


_LONG_LIMIT = 2**63
_DECIMAL_DIGITS = 38


def _beyond_bigint(value: Any) -> bool:
    if isinstance(value, list):
        return any(map(_beyond_bigint, value))
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _LONG_LIMIT


def _lit(value: Any) -> Column:
    """A rule's value as a literal. An integer beyond bigint becomes a decimal (exact against
    any integer column); beyond Spark's 38 decimal digits, a double (no bigint comes near)."""
    from pyspark.sql import functions as F

    if _beyond_bigint(value):
        if len(str(abs(value))) <= _DECIMAL_DIGITS:
            return F.lit(Decimal(value))
        return F.lit(float(value))
    return F.lit(value)


__all__ = [
    "CompiledTag",
    "RuleSource",
    "TagFailure",
    "compile_rule",
    "compile_tag",
    "rule_columns",
]
