"""Audience expressions (SPEC section 10): a tag id or tag name, or `{"and": [e, ...]}`,
`{"or": [e, ...]}`, `{"not": e}`. Parsed once into a tree of resolved tag ids; every
problem is reported with its location in the document sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tagsys.errors import AudienceError
from tagsys.store.audiences import TagRef

MAX_DEPTH = 16
MAX_NODES = 500
OPERATORS = ("and", "or", "not")


@dataclass(frozen=True)
class Tag:
    tag_id: int


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Tag | And | Or | Not


def operands(node: Node) -> tuple[Node, ...]:
    """The top-level operands whose counts a count reports (the node itself for a leaf)."""
    if isinstance(node, And | Or):
        return node.operands
    return (node,)


def tag_ids(node: Node) -> list[int]:
    """Every tag the expression names, in first-mention order."""
    seen: dict[int, None] = {}
    stack: list[Node] = [node]
    while stack:
        current = stack.pop(0)
        if isinstance(current, Tag):
            seen.setdefault(current.tag_id)
        elif isinstance(current, Not):
            stack.append(current.operand)
        else:
            stack.extend(current.operands)
    return list(seen)


def to_document(node: Node) -> Any:
    """The expression as JSON with tag ids (names resolved)."""
    if isinstance(node, Tag):
        return node.tag_id
    if isinstance(node, Not):
        return {"not": to_document(node.operand)}
    return {"and" if isinstance(node, And) else "or": [to_document(o) for o in node.operands]}


class _Parser:
    def __init__(self, tags: Sequence[TagRef]) -> None:
        self.by_id = {t.tag_id: t for t in tags}
        self.by_name: dict[str, list[TagRef]] = {}
        for tag in tags:
            self.by_name.setdefault(tag.name, []).append(tag)
        self.problems: list[tuple[str, str]] = []
        self.nodes = 0

    def node(self, doc: Any, where: str, depth: int) -> Node | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.problems.append((where, f"the expression has more than {MAX_NODES} parts"))
            return None
        if depth > MAX_DEPTH:
            self.problems.append((where, f"nested deeper than {MAX_DEPTH} levels"))
            return None
        if isinstance(doc, bool):
            self.problems.append(
                (where, f"expected a tag id, a tag name or an operator, got {doc}")
            )
            return None
        if isinstance(doc, int):
            return self.tag_by_id(doc, where)
        if isinstance(doc, str):
            return self.tag_by_name(doc, where)
        if isinstance(doc, dict):
            return self.operator(doc, where, depth)
        self.problems.append(
            (
                where,
                f"expected a tag id, a tag name or an operator object, got {type(doc).__name__}",
            )
        )
        return None

    def tag_by_id(self, tag_id: int, where: str) -> Node | None:
        tag = self.by_id.get(tag_id)
        if tag is None:
            self.problems.append((where, f"unknown tag id {tag_id}"))
            return None
        if tag.deleted:
            self.problems.append((where, f"tag {tag_id} ({tag.name}) was deleted"))
            return None
        return Tag(tag_id)

    def tag_by_name(self, name: str, where: str) -> Node | None:
        if not name.strip():
            self.problems.append((where, "empty tag name"))
            return None
        found = [t for t in self.by_name.get(name, []) if not t.deleted]
        if not found:
            deleted = self.by_name.get(name)
            problem = f"tag '{name}' was deleted" if deleted else f"unknown tag name '{name}'"
            self.problems.append((where, problem))
            return None
        if len(found) > 1:
            ids = ", ".join(str(t.tag_id) for t in found)
            self.problems.append(
                (where, f"tag name '{name}' is ambiguous (tags {ids}): use the id")
            )
            return None
        return Tag(found[0].tag_id)

    def operator(self, doc: dict[str, Any], where: str, depth: int) -> Node | None:
        if len(doc) != 1 or next(iter(doc)) not in OPERATORS:
            keys = ", ".join(repr(k) for k in doc) or "none"
            self.problems.append(
                (where, f"an operator object has exactly one key of and, or, not (got {keys})")
            )
            return None
        op, value = next(iter(doc.items()))
        here = f"{where}.{op}"
        if op == "not":
            inner = self.node(value, here, depth + 1)
            return None if inner is None else Not(inner)
        if not isinstance(value, list) or not value:
            self.problems.append((here, f"'{op}' takes a non-empty list of expressions"))
            return None
        parts = [self.node(v, f"{here}[{i}]", depth + 1) for i, v in enumerate(value)]
        if any(p is None for p in parts):
            return None
        kept = tuple(p for p in parts if p is not None)
        return And(kept) if op == "and" else Or(kept)


def parse(doc: Any, tags: Sequence[TagRef]) -> Node:
    """The expression `doc` resolved against the tag definitions, or AudienceError."""
    if doc is None or doc == {} or doc == [] or doc == "":
        raise AudienceError("invalid audience expression", [("$", "the expression is empty")])
    parser = _Parser(tags)
    node = parser.node(doc, "$", 1)
    if parser.problems or node is None:
        raise AudienceError("invalid audience expression", parser.problems)
    return node
