"""Audience expressions: parsed against the tag definitions, every problem located."""

from __future__ import annotations

from typing import Any

import pytest

from tagsys.audiences.expression import MAX_DEPTH, MAX_NODES, And, Not, Or, Tag, parse, tag_ids
from tagsys.errors import AudienceError
from tagsys.store.audiences import TagRef

TAGS = [
    TagRef(1, "high-net-worth", "value", False),
    TagRef(2, "active trader", "activity", False),
    TagRef(3, "new user", "lifecycle", False),
    TagRef(4, "gone", "lifecycle", True),
    TagRef(5, "twin", "a", False),
    TagRef(6, "twin", "b", False),
]


def problems(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(AudienceError) as caught:
        parse(doc, TAGS)
    return caught.value.problems


def test_ids_names_and_operators_resolve() -> None:
    doc = {"and": ["high-net-worth", 2, {"not": "new user"}]}
    node = parse(doc, TAGS)
    assert node == And((Tag(1), Tag(2), Not(Tag(3))))
    assert parse({"or": [1, 1]}, TAGS) == Or((Tag(1), Tag(1)))
    assert tag_ids(node) == [1, 2, 3]


@pytest.mark.parametrize(
    ("doc", "where", "what"),
    [
        ({"and": [1, 99]}, "$.and[1]", "unknown tag id 99"),
        ({"or": [1, "nobody"]}, "$.or[1]", "unknown tag name 'nobody'"),
        ({"not": 4}, "$.not", "tag 4 (gone) was deleted"),
        ("gone", "$", "tag 'gone' was deleted"),
        ("twin", "$", "ambiguous (tags 5, 6)"),
        ({"and": []}, "$.and", "non-empty list"),
        ({"or": 3}, "$.or", "non-empty list"),
        ({"xor": [1, 2]}, "$", "exactly one key"),
        ({"and": [1], "or": [2]}, "$", "exactly one key"),
        ({"and": [1, True]}, "$.and[1]", "got True"),
        ({"and": [1, 2.5]}, "$.and[1]", "got float"),
        ({"and": [1, {"not": " "}]}, "$.and[1].not", "empty tag name"),
    ],
)
def test_each_problem_is_located(doc: Any, where: str, what: str) -> None:
    found = problems(doc)
    assert any(w == where and what in p for w, p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"and": [98, {"or": ["x", 1]}, {"not": 97}]})
    assert [w for w, _ in found] == ["$.and[0]", "$.and[1].or[0]", "$.and[2].not"]


@pytest.mark.parametrize("doc", [None, {}, [], ""])
def test_empty_expressions_are_refused(doc: Any) -> None:
    assert problems(doc) == [("$", "the expression is empty")]


def test_too_deep_and_too_large_expressions_are_refused() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH):
        deep = {"not": deep}
    assert any("deeper than" in p for _, p in problems(deep))
    wide = {"or": [1] * (MAX_NODES + 10)}
    found = problems(wide)
    assert len(found) == 1 and f"more than {MAX_NODES} parts" in found[0][1]


def test_the_message_lists_the_problems() -> None:
    with pytest.raises(AudienceError, match=r"\$\.and\[1\]: unknown tag id 99"):
        parse({"and": [1, 99]}, TAGS)
