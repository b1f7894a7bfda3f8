"""Checking one rule against the lake: every problem at once, each with its place in the rule.

A problem's location is a path inside the rule such as `conditions[1].conditions[0].value`
(`$` is the rule as a whole). Messages are written for the people who write rules: what is
wrong, and what would be valid.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from tagsys.errors import FieldError, RuleError
from tagsys.lake.schema import VALUE_KINDS, LakeColumn, LakeSchema, ValueKind
from tagsys.rules.model import (
    CONDITION_KEYS,
    GROUP_KEYS,
    LOGICS,
    OPERATOR_KINDS,
    OPERATORS,
    Condition,
    Group,
    parse_iso_date,
    reads_text_as_date,
)

RuleInput = str | bytes | Mapping[str, Any] | Group

#: Largest day count accepted by the relative date operators (about 270 years).
MAX_DAYS = 100_000

SCALAR_OPERATORS = frozenset(
    {"=", "!=", ">", "<", ">=", "<=", "contains", "not_contains", "starts_with", "ends_with"}
)
LIST_OPERATORS = frozenset({"in", "not_in"})
RANGE_OPERATORS = frozenset({"in_range", "not_in_range", "date_between"})
NO_VALUE_OPERATORS = frozenset({"is_null", "is_not_null"})
DAY_COUNT_OPERATORS = frozenset({"recent_days", "days_ago"})
DAY_PAIR_OPERATORS = frozenset({"days_ago_between"})

KIND_ONE = {
    "number": "a number",
    "string": 'a text value in double quotes (e.g. "abc")',
    "date": 'a date written "YYYY-MM-DD"',
    "boolean": "true or false",
}
KIND_MANY = {
    "number": "numbers",
    "string": "text values",
    "date": 'dates written "YYYY-MM-DD"',
    "boolean": "true/false values",
}
KIND_COLUMN = {
    "number": "a number column",
    "string": "a text column",
    "date": "a date column",
    "boolean": "a true/false column",
}


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong with a rule, at `location` inside it (and in rule `rule_id`, if known)."""

    location: str
    message: str
    rule_id: int | None = None
    severity: str = "error"
    """`error` (the tag fails closed) or `warning` (the rule runs; worth a look)."""

    def with_rule(self, rule_id: int) -> RuleProblem:
        return replace(self, rule_id=rule_id)

    def render(self) -> str:
        rule = f"rule {self.rule_id}, " if self.rule_id is not None else ""
        return f"{rule}at {self.location}: {self.message}"


class RuleValidationError(RuleError):
    """A rule is invalid; carries every problem found, with the tag and rule ids when known."""

    def __init__(
        self,
        problems: Sequence[RuleProblem],
        *,
        tag_id: int | None = None,
        rule_id: int | None = None,
    ) -> None:
        self.problems = tuple(problems)
        self.tag_id = tag_id
        self.rule_id = rule_id
        super().__init__(render_problems(self.problems, tag_id=tag_id, rule_id=rule_id))


def render_problems(
    problems: Sequence[RuleProblem], *, tag_id: int | None = None, rule_id: int | None = None
) -> str:
    """`tag 3, rule 7: 2 problems` followed by one indented line per problem."""
    head = ", ".join(
        part
        for part in (
            f"tag {tag_id}" if tag_id is not None else "",
            f"rule {rule_id}" if rule_id is not None else "",
        )
        if part
    )
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    lines = [f"{head or 'rule'} is invalid ({count}); it is not computed until fixed:"]
    lines += [f"  - {problem.render()}" for problem in problems]
    return "\n".join(lines)


def validate_rule(rule: RuleInput, schema: LakeSchema) -> list[RuleProblem]:
    """Every problem of one rule (empty when the rule is valid)."""
    return _check(rule, schema)[1]


def rule_warnings(rule: RuleInput, schema: LakeSchema) -> list[RuleProblem]:
    """What a valid rule does that its author may not expect: dates read from text columns."""
    group = _check(rule, schema)[0]
    if group is None:
        return []
    warnings = []
    for location, condition in _located_conditions(group, "$"):
        column = schema.resolve(condition.field)
        if reads_text_as_date(condition, column):
            warnings.append(
                RuleProblem(
                    at(location, "type"),
                    f"field '{condition.field}' is a text column ({column.qualified}, "
                    f"{column.data_type}): its values are read as dates written YYYY-MM-DD "
                    "(optionally with a time HH:MM:SS); any other value makes the condition "
                    "false and is counted in the run summary",
                    severity="warning",
                )
            )
    return warnings


def _located_conditions(group: Group, location: str) -> list[tuple[str, Condition]]:
    found: list[tuple[str, Condition]] = []
    for index, node in enumerate(group.conditions):
        where = at(at(location, "conditions"), index)
        if isinstance(node, Group):
            found += _located_conditions(node, where)
        else:
            found.append((where, node))
    return found


def parse_rule(
    rule: RuleInput,
    schema: LakeSchema,
    *,
    tag_id: int | None = None,
    rule_id: int | None = None,
) -> Group:
    """The rule as a model, or RuleValidationError with all of its problems."""
    group, problems = _check(rule, schema)
    if group is None:
        raise RuleValidationError(problems, tag_id=tag_id, rule_id=rule_id)
    return group


def _check(rule: RuleInput, schema: LakeSchema) -> tuple[Group | None, list[RuleProblem]]:
    try:
        return _check_nested(rule, schema)
    except RecursionError:
        return None, [RuleProblem("$", "the rule nests groups too deeply to be read")]


def _check_nested(rule: RuleInput, schema: LakeSchema) -> tuple[Group | None, list[RuleProblem]]:
    data, problems = load_rule(rule)
    if problems:
        return None, problems
    checker = _Checker(schema)
    checker.root(data)
    if checker.problems:
        return None, checker.problems
    try:
        return Group.model_validate(data), []
    except ValidationError as exc:  # a gap in the checks above: still report, still fail
        return None, [_from_pydantic(error) for error in exc.errors()]


def load_rule(rule: RuleInput) -> tuple[Any, list[RuleProblem]]:
    """The rule as plain JSON data, or the reason it cannot be read."""
    if isinstance(rule, Group):
        return rule.model_dump(exclude_none=True), []
    if isinstance(rule, bytes):
        try:
            rule = rule.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, [RuleProblem("$", f"the rule is not UTF-8 text: {exc.reason}")]
    if not isinstance(rule, str):
        return rule, []
    try:
        return json.loads(rule), []
    except json.JSONDecodeError as exc:
        message = f"the rule is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        return None, [RuleProblem("$", message)]


def show(value: Any, limit: int = 80) -> str:
    """A JSON value as the rule's author wrote it, shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def at(location: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{location}[{key}]"
    return key if location == "$" else f"{location}.{key}"


def _kind_of_value(value: Any, kind: ValueKind) -> bool:
    if kind == "number":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind == "string":
        return isinstance(value, str)
    if kind == "date":
        return parse_iso_date(value) is not None
    return isinstance(value, bool)


def _is_day_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_DAYS


_PYDANTIC_BRANCHES = frozenset({"condition", "group", "bool", "int", "float", "str"})


def _from_pydantic(error: Mapping[str, Any]) -> RuleProblem:
    location = "$"
    for part in error["loc"]:
        if part not in _PYDANTIC_BRANCHES and not str(part).startswith("list["):
            location = at(location, part)
    return RuleProblem(location, str(error["msg"]))


class _Checker:
    """Walks the raw JSON of one rule and collects problems."""

    def __init__(self, schema: LakeSchema) -> None:
        self.schema = schema
        self.problems: list[RuleProblem] = []

    def add(self, location: str, message: str) -> None:
        self.problems.append(RuleProblem(location, message))

    def root(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            self.add(
                "$",
                'a rule must be a JSON object {"logic": ..., "conditions": [...]}; '
                f"got {show(data)}",
            )
        elif "logic" not in data and "conditions" not in data and "field" in data:
            self.add(
                "$",
                "a rule must be a group, not a single condition: write "
                '{"logic": "AND", "conditions": [ ...this condition... ]}',
            )
        else:
            self.group(data, "$")

    def node(self, data: Any, location: str) -> None:
        if isinstance(data, Mapping) and ("logic" in data or "conditions" in data):
            self.group(data, location)
        elif isinstance(data, Mapping) and data:
            self.condition(data, location)
        else:
            self.add(
                location,
                "each entry of 'conditions' must be a condition "
                '{"field": ..., "operator": ..., "value": ...} or a group '
                f'{{"logic": ..., "conditions": [...]}}; got {show(data)}',
            )

    def unknown_keys(
        self, data: Mapping[str, Any], allowed: Iterable[str], what: str, location: str
    ) -> None:
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                self.add(
                    at(location, str(key)),
                    f"unknown key '{key}' in {what}; {what} has the keys {', '.join(allowed)}",
                )

    def group(self, data: Mapping[str, Any], location: str) -> None:
        self.unknown_keys(data, GROUP_KEYS, "a group", location)
        self.logic(data.get("logic"), "logic" in data, at(location, "logic"))
        where = at(location, "conditions")
        conditions = data.get("conditions")
        if "conditions" not in data:
            self.add(where, "missing 'conditions': a group needs a list of conditions")
        elif not isinstance(conditions, list):
            self.add(where, f"'conditions' must be a list of conditions; got {show(conditions)}")
        elif not conditions:
            self.add(where, "the group is empty: add at least one condition or group")
        else:
            for index, child in enumerate(conditions):
                self.node(child, at(where, index))

    def logic(self, logic: Any, present: bool, location: str) -> None:
        valid = ", ".join(LOGICS)
        if not present:
            self.add(location, f"missing 'logic': a group needs logic {valid}")
        elif logic not in LOGICS:
            hint = f" (write '{logic.upper()}')" if str(logic).upper() in LOGICS else ""
            self.add(location, f"unknown logic {show(logic)}{hint}; valid: {valid}")

    def condition(self, data: Mapping[str, Any], location: str) -> None:
        self.unknown_keys(data, CONDITION_KEYS, "a condition", location)
        column = self.field(data, location)
        kind = self.declared_type(data, location, column)
        operator = self.operator(data, location, kind)
        if operator is None or kind is None:
            return
        if kind not in OPERATOR_KINDS[operator]:
            self.add(at(location, "operator"), self.misfit(data["field"], operator, kind))
            return
        _ValueCheck(self, data, location, kind).run()

    def field(self, data: Mapping[str, Any], location: str) -> LakeColumn | None:
        where = at(location, "field")
        name = data.get("field")
        if "field" not in data:
            self.add(where, "missing 'field': name the lake column this condition tests")
            return None
        if not isinstance(name, str) or not name:
            self.add(where, f"'field' must be a column name in double quotes; got {show(name)}")
            return None
        try:
            column = self.schema.resolve(name)
        except FieldError as exc:
            self.add(where, str(exc))
            return None
        if column.kind is None:
            self.add(
                where,
                f"field '{name}' has type {column.data_type}, which rules cannot test; "
                "usable columns hold numbers, text, dates or true/false",
            )
            return None
        return column

    def declared_type(
        self, data: Mapping[str, Any], location: str, column: LakeColumn | None
    ) -> ValueKind | None:
        declared = data.get("type")
        if declared is None:
            return column.kind if column else None
        where = at(location, "type")
        if declared not in VALUE_KINDS:
            self.add(
                where,
                f"unknown type {show(declared)}; valid: {', '.join(VALUE_KINDS)} "
                "(or leave 'type' out: it is taken from the column)",
            )
            return column.kind if column else None
        if column is not None and declared == "date" and column.kind == "string":
            return "date"  # dates stored as text: parsed, see rule_warnings
        if column is not None and declared != column.kind:
            self.add(
                where,
                f"type '{declared}' contradicts field '{data['field']}', which is "
                f"{KIND_COLUMN[column.kind or 'string']} ({column.data_type}); "
                f"write '{column.kind}' or leave 'type' out",
            )
            return None
        return column.kind if column else declared

    def operator(self, data: Mapping[str, Any], location: str, kind: ValueKind | None) -> Any:
        where = at(location, "operator")
        operator = data.get("operator")
        fitting = [op for op in OPERATORS if kind is None or kind in OPERATOR_KINDS[op]]
        valid = ", ".join(fitting)
        suffix = f" for {KIND_COLUMN[kind]}" if kind else ""
        if "operator" not in data:
            self.add(where, f"missing 'operator'; valid operators{suffix}: {valid}")
        elif operator not in OPERATORS:
            self.add(where, f"unknown operator {show(operator)}; valid operators{suffix}: {valid}")
        else:
            return operator
        return None

    def misfit(self, field: str, operator: str, kind: ValueKind) -> str:
        fitting = ", ".join(op for op in OPERATORS if kind in OPERATOR_KINDS[op])
        return (
            f"operator '{operator}' does not apply to field '{field}', which is "
            f"{KIND_COLUMN[kind]}; operators for {KIND_MANY[kind].split(' ')[0]}: {fitting}"
        )


class _ValueCheck:
    """Checks the `value` of one condition whose field, operator and kind are fine."""

    def __init__(
        self, checker: _Checker, data: Mapping[str, Any], location: str, kind: ValueKind
    ) -> None:
        self.checker = checker
        self.operator: str = data["operator"]
        self.present = data.get("value") is not None
        self.value = data.get("value")
        self.kind = kind
        self.where = at(location, "value")
        self.subject = f"'{self.operator}' on field '{data['field']}'"

    def fail(self, expected: str, location: str | None = None, value: Any = None) -> None:
        shown = show(self.value if location is None else value)
        got = f"got {shown}" if self.present else "the condition has no 'value'"
        self.checker.add(location or self.where, f"{self.subject} needs {expected}; {got}")

    def run(self) -> None:
        op = self.operator
        if op in NO_VALUE_OPERATORS:
            if self.present:
                self.fail("no value: remove 'value'")
        elif op in SCALAR_OPERATORS:
            if not _kind_of_value(self.value, self.kind):
                self.fail(KIND_ONE[self.kind])
        elif op in LIST_OPERATORS:
            self.list_of_kind()
        elif op in RANGE_OPERATORS:
            self.pair(f"two {KIND_MANY[self.kind]} [low, high] with low <= high", self.kind)
        elif op in DAY_COUNT_OPERATORS:
            if not _is_day_count(self.value):
                self.fail(f"a whole number of days from 0 to {MAX_DAYS}")
        elif op in DAY_PAIR_OPERATORS:
            self.pair(f"two whole numbers of days [a, b] with 0 <= a <= b <= {MAX_DAYS}", None)

    def list_of_kind(self) -> None:
        expected = f"a non-empty list of {KIND_MANY[self.kind]}"
        if not isinstance(self.value, list) or not self.value:
            self.fail(expected)
            return
        for index, item in enumerate(self.value):
            if not _kind_of_value(item, self.kind):
                self.fail(
                    f"{expected}, each one {KIND_ONE[self.kind]}", at(self.where, index), item
                )

    def pair(self, expected: str, kind: ValueKind | None) -> None:
        if not isinstance(self.value, list) or len(self.value) != 2:
            self.fail(f"a list of exactly {expected}")
            return
        good = True
        for index, item in enumerate(self.value):
            ok = _is_day_count(item) if kind is None else _kind_of_value(item, kind)
            if not ok:
                self.fail(f"a list of exactly {expected}", at(self.where, index), item)
                good = False
        if good:
            low, high = (parse_iso_date(v) if kind == "date" else v for v in self.value)
            if low > high:  # type: ignore[operator]
                self.fail(f"{expected}; the first is greater than the second")
