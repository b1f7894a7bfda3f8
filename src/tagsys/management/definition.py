"""A tag's full definition as management sees it, versions it, diffs it and writes it to files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tagsys.errors import UsageError
from tagsys.store.repository import TagDefinition

GROUP_ORDER = ("logic", "conditions")
CONDITION_ORDER = ("field", "operator", "value", "type")
MAX_RULE_DEPTH = 200
"""JSON levels a rule may nest (about 100 groups): far beyond a readable rule, well within
what the recursive readers (ordering, diff, validation) can walk."""


def nesting_depth(node: Any, limit: int = MAX_RULE_DEPTH) -> int:
    """How deep `node`'s objects and lists nest (1: a scalar), counting no further than
    `limit` + 1; iterative, so any depth can be measured."""
    deepest, stack = 0, [(node, 1)]
    while stack and deepest <= limit:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, Mapping) else item
        if isinstance(item, Mapping | list):
            stack.extend((child, level + 1) for child in children)
    return deepest


def readable_rule(node: Any) -> Any:
    """A rule with its keys in reading order (logic before conditions, field before operator
    before value) and unknown keys after them, sorted: stable, diff-friendly output."""
    if isinstance(node, Mapping):
        order = GROUP_ORDER if "conditions" in node or "logic" in node else CONDITION_ORDER
        keys = [k for k in order if k in node] + sorted(k for k in node if k not in order)
        return {k: readable_rule(node[k]) if k == "conditions" else node[k] for k in keys}
    if isinstance(node, list):
        return [readable_rule(item) for item in node]
    return node


def parse_stored_rule(text: str) -> Any:
    """A stored rule as JSON data; text that is not JSON stays text (it is reported invalid)."""
    try:
        return readable_rule(json.loads(text))
    except ValueError:
        return text


@dataclass(frozen=True)
class TagSpec:
    """What a version holds: everything a user can change about a tag."""

    name: str
    category: str
    description: str | None = None
    active: bool = True
    rules: tuple[Any, ...] = ()
    deleted: bool = False

    def __post_init__(self) -> None:
        for index, rule in enumerate(self.rules):
            if nesting_depth(rule) > MAX_RULE_DEPTH:
                raise UsageError(
                    f"rule {index + 1} of tag '{self.name}' nests deeper than "
                    f"{MAX_RULE_DEPTH} levels: flatten its groups (AND of ANDs is one AND)"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "active": self.active,
            "deleted": self.deleted,
            "rules": [readable_rule(r) for r in self.rules],
        }

    def same_as(self, other: TagSpec) -> bool:
        """Equal leaf by leaf, types included (`==` takes a rule's `true` for `1`)."""
        return not diff(self.to_dict(), other.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TagSpec:
        return cls(
            name=data["name"],
            category=data["category"],
            description=data.get("description"),
            active=bool(data.get("active", True)),
            rules=tuple(readable_rule(r) for r in data.get("rules", ())),
            deleted=bool(data.get("deleted", False)),
        )

    def changed(self, **changes: Any) -> TagSpec:
        if "rules" in changes:
            changes["rules"] = tuple(readable_rule(r) for r in changes["rules"])
        return replace(self, **changes)


def readable_definition(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A stored version's definition (kept key-sorted) in reading order."""
    return TagSpec.from_dict(definition).to_dict()


@dataclass(frozen=True)
class TagState:
    """A stored tag: its id, current version and definition."""

    tag_id: int
    version: int
    spec: TagSpec
    problems: tuple[tuple[str, str], ...] = field(default=())
    """Rule problems of an inactive draft, saved anyway (location, problem)."""

    def view(self) -> dict[str, Any]:
        return {
            "tag_id": self.tag_id,
            "version": self.version,
            **self.spec.to_dict(),
            "problems": [{"location": w, "problem": p} for w, p in self.problems],
        }


def state_of(record: TagDefinition) -> TagState:
    spec = TagSpec(
        name=record.tag_name,
        category=record.tag_category,
        description=record.description,
        active=record.is_active,
        rules=tuple(parse_stored_rule(text) for _, text in record.rules),
        deleted=record.deleted,
    )
    return TagState(record.tag_id, record.version, spec)


@dataclass(frozen=True)
class Change:
    """One difference between two definitions, at a path such as `rules[0].conditions[1].value`."""

    path: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        if self.before is _MISSING:
            return "added"
        return "removed" if self.after is _MISSING else "changed"

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"path": self.path, "change": self.kind}
        if self.before is not _MISSING:
            view["before"] = self.before
        if self.after is not _MISSING:
            view["after"] = self.after
        return view

    def render(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {show(self.after)}"
        if self.kind == "removed":
            return f"- {self.path}: {show(self.before)}"
        return f"~ {self.path}: {show(self.before)} -> {show(self.after)}"


_MISSING: Any = object()


def show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Every leaf that differs, in document order."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        keys = list(before) + [k for k in after if k not in before]
        return [
            change
            for key in keys
            for change in diff(
                before.get(key, _MISSING),
                after.get(key, _MISSING),
                f"{path}.{key}" if path else key,
            )
        ]
    if isinstance(before, list) and isinstance(after, list):
        return _diff_lists(before, after, path)
    if (
        before is _MISSING
        or after is _MISSING
        or before != after
        or type(before) is not type(after)
    ):
        return [Change(path or "$", before, after)]
    return []


def _diff_lists(before: Sequence[Any], after: Sequence[Any], path: str) -> list[Change]:
    changes = []
    for index in range(max(len(before), len(after))):
        old = before[index] if index < len(before) else _MISSING
        new = after[index] if index < len(after) else _MISSING
        changes += diff(old, new, f"{path}[{index}]")
    return changes
