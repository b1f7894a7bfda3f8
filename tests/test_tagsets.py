"""Tag-set arithmetic (SPEC section 5): new(u) = (old(u) - S) ∪ computed(u).

The expectations are written out by hand (the table) or stated with Python's own set
operators (the property), never with the function under test.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagsys.tagsets import (
    TagInfo,
    TagScope,
    canonical_json,
    details_json,
    ids_json,
    merge_tags,
    parse_details,
    parse_ids,
)

DEFS = {
    1: TagInfo("rich", "wealth"),
    2: TagInfo("active", "behavior"),
    3: TagInfo("risky", "risk"),
}


def detail(tag_id: int) -> dict[str, str]:
    return DEFS[tag_id].as_detail()


OLD_2 = {"tag_name": "active (old name)", "tag_category": "old"}

# (case, old ids, old details, computed, scope, expected ids, expected details)
CASES: list[
    tuple[
        str,
        list[int],
        dict[int, dict[str, Any]],
        list[int],
        TagScope,
        list[int],
        dict[int, dict[str, Any]],
    ]
] = [
    ("empty everything", [], {}, [], TagScope(frozenset({1})), [], {}),
    ("new user gets computed", [], {}, [1], TagScope(frozenset({1})), [1], {1: detail(1)}),
    ("in-scope tag lost", [1], {1: detail(1)}, [], TagScope(frozenset({1})), [], {}),
    (
        "out-of-scope tag kept with its old detail",
        [2],
        {2: OLD_2},
        [1],
        TagScope(frozenset({1})),
        [1, 2],
        {1: detail(1), 2: OLD_2},
    ),
    ("computed outside the scope is ignored", [], {}, [2], TagScope(frozenset({1})), [], {}),
    (
        "recomputed in-scope tag takes the current definition",
        [2],
        {2: OLD_2},
        [2],
        TagScope(frozenset({2})),
        [2],
        {2: detail(2)},
    ),
    (
        "all_tags removes unknown (deleted) ids",
        [1, 99],
        {1: detail(1), 99: {"tag_name": "gone", "tag_category": "x"}},
        [3],
        TagScope(all_tags=True),
        [3],
        {3: detail(3)},
    ),
    (
        "failed tag keeps its assignment under all_tags",
        [1, 2],
        {1: detail(1), 2: OLD_2},
        [],
        TagScope(all_tags=True, failed=frozenset({2})),
        [2],
        {2: OLD_2},
    ),
    (
        "failed tag is not added even when computed",
        [],
        {},
        [1, 2],
        TagScope(frozenset({1, 2}), failed=frozenset({2})),
        [1],
        {1: detail(1)},
    ),
    (
        "result is sorted and unique",
        [3, 1],
        {3: detail(3), 1: detail(1)},
        [2, 2],
        TagScope(frozenset({2})),
        [1, 2, 3],
        {1: detail(1), 2: detail(2), 3: detail(3)},
    ),
    (
        "kept id without an old detail gets its definition",
        [3],
        {},
        [],
        TagScope(frozenset({1})),
        [3],
        {3: detail(3)},
    ),
    (
        "kept id unknown everywhere gets a placeholder",
        [7],
        {},
        [],
        TagScope(frozenset({1})),
        [7],
        {7: {"tag_name": "tag 7", "tag_category": ""}},
    ),
]


@pytest.mark.parametrize(
    ("old", "old_details", "computed", "scope", "want_ids", "want_details"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_merge_tags_table(
    old: list[int],
    old_details: dict[int, dict[str, Any]],
    computed: list[int],
    scope: TagScope,
    want_ids: list[int],
    want_details: dict[int, dict[str, Any]],
) -> None:
    assert merge_tags(old, old_details, computed, scope, DEFS) == (want_ids, want_details)


tag_ids = st.frozensets(st.integers(min_value=1, max_value=12), max_size=8)


@given(old=tag_ids, computed=tag_ids, scope_ids=tag_ids, failed=tag_ids, all_tags=st.booleans())
def test_merge_is_old_minus_scope_union_computed(
    old: frozenset[int],
    computed: frozenset[int],
    scope_ids: frozenset[int],
    failed: frozenset[int],
    all_tags: bool,
) -> None:
    universe = frozenset(range(1, 13))
    # S as SPEC states it: every id on task-all, the listed ids otherwise; failed tags are
    # never in S (their assignments stay untouched).
    s = (universe if all_tags else scope_ids) - failed
    # computed(u) only has tags the run computed, i.e. tags in S.
    computed_in_s = computed & s
    scope = TagScope(scope_ids, all_tags=all_tags, failed=failed)
    old_details = {t: {"tag_name": f"old {t}", "tag_category": "old"} for t in old}

    new_ids, new_details = merge_tags(old, old_details, computed, scope, DEFS)

    assert new_ids == sorted((old - s) | computed_in_s)
    assert set(new_details) == set(new_ids)
    for t in new_ids:
        if t in old - s:
            assert new_details[t] == old_details[t], "a tag outside S is never touched"
        elif t in DEFS:
            assert new_details[t] == DEFS[t].as_detail()
    # idempotent: merging the same computation again changes nothing
    assert merge_tags(new_ids, new_details, computed, scope, DEFS) == (new_ids, new_details)


def test_json_helpers_are_canonical_and_round_trip() -> None:
    assert ids_json([3, 1, 3]) == "[1,3]"
    assert details_json({10: {"tag_name": "ä", "tag_category": "c"}, 2: detail(2)}) == (
        '{"2":{"tag_name":"active","tag_category":"behavior"},'
        '"10":{"tag_name":"ä","tag_category":"c"}}'
    )
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert parse_ids("[2,5]") == [2, 5]
    assert parse_ids(None) == parse_ids("") == []
    assert parse_details('{"2":{"tag_name":"x"}}') == {2: {"tag_name": "x"}}
    assert parse_details(None) == {}
    assert json.loads(details_json(parse_details('{"4":{"a":1}}'))) == {"4": {"a": 1}}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_store_and_tagsets_never_import_the_engine() -> None:
    package = Path(__import__("tagsys").__file__).parent
    files = [package / "tagsets.py", *sorted((package / "store").rglob("*.py"))]
    offenders = {
        str(f.relative_to(package)): sorted(m for m in _imports(f) if m.startswith("tagsys.engine"))
        for f in files
    }
    assert {f: m for f, m in offenders.items() if m} == {}
