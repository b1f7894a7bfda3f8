"""The rule language: model, validation against the lake, Spark compilation, reference, explain."""

from tagsys.rules.compiler import (
    CompiledTag,
    RuleSource,
    TagFailure,
    compile_rule,
    compile_tag,
    rule_columns,
)
from tagsys.rules.explain import Explanation, explain_rule
from tagsys.rules.model import Condition, Group, Rule
from tagsys.rules.reference import evaluate_rule
from tagsys.rules.validate import RuleProblem, RuleValidationError, parse_rule, validate_rule

__all__ = [
    "CompiledTag",
    "Condition",
    "Explanation",
    "Group",
    "Rule",
    "RuleProblem",
    "RuleSource",
    "RuleValidationError",
    "TagFailure",
    "compile_rule",
    "compile_tag",
    "evaluate_rule",
    "explain_rule",
    "parse_rule",
    "rule_columns",
    "validate_rule",
]
