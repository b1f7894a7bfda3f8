"""CRUD, versions, diff, revert, locking and the audit log, without HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from tagsys.errors import (
    ConflictError,
    DefinitionError,
    NotFoundError,
    TagSysError,
    UsageError,
)
from tagsys.management.definition import TagSpec
from tagsys.management.manager import Actor, TagManager
from tagsys.store import repository
from tests.management.conftest import ALICE, BOB

NESTED: dict[str, Any] = {
    "logic": "AND",
    "conditions": [
        {"field": "amount", "operator": ">=", "value": 1000},
        {
            "logic": "OR",
            "conditions": [
                {"field": "city", "operator": "=", "value": "上海"},
                {"field": "age", "operator": "<", "value": 30},
            ],
        },
    ],
}
BROKEN: dict[str, Any] = {
    "logic": "AND",
    "conditions": [
        {"field": "amount", "operator": ">=", "value": 1000},
        {
            "logic": "OR",
            "conditions": [
                {"field": "age", "operator": ">", "value": "old"},
                {"field": "nope", "operator": "=", "value": 1},
            ],
        },
    ],
}


def spec(**fields: Any) -> TagSpec:
    base: dict[str, Any] = {"name": "big", "category": "value", "rules": [NESTED]}
    return TagSpec.from_dict({**base, **fields})


def test_create_change_revert_keeps_every_version(manager: TagManager) -> None:
    created = manager.create_tag(ALICE, spec())
    assert created.version == 1
    changed = manager.update_tag(BOB, created.tag_id, {"description": "rich"}, expected=1)
    assert changed.version == 2
    reverted = manager.revert(BOB, created.tag_id, 1)
    assert reverted.version == 3
    assert reverted.spec == created.spec
    history = manager.versions(created.tag_id)
    assert [(v.version, v.action, v.actor) for v in history] == [
        (1, "create", "alice"),
        (2, "update", "bob"),
        (3, "revert", "bob"),
    ]
    assert history[0].comment == "first cut" and history[2].comment == "revert to version 1"
    assert history[0].definition["rules"] == [NESTED]
    changes = manager.diff(created.tag_id, 1, 2)
    assert [c.view() for c in changes] == [
        {"path": "description", "change": "changed", "before": None, "after": "rich"}
    ]
    stored = {d.tag_id: d for d in repository.load_all_definitions(bind=manager.engine)}
    assert stored[created.tag_id].version == 3


def test_an_unchanged_update_makes_no_version(manager: TagManager) -> None:
    created = manager.create_tag(ALICE, spec())
    again = manager.update_tag(BOB, created.tag_id, {"rules": [NESTED]})
    assert again.version == 1


def test_a_draft_rule_whose_value_changes_type_only_gets_a_version(manager: TagManager) -> None:
    """`1` and `true` are equal in Python, not in a rule: fixing a draft's 1 to true saves."""
    one = {"logic": "AND", "conditions": [{"field": "vip", "operator": "=", "value": 1}]}
    draft = manager.create_tag(
        ALICE, TagSpec.from_dict({"name": "vip", "category": "people", "active": False})
    )
    manager.update_tag(ALICE, draft.tag_id, {"rules": [one]})
    fixed = {"logic": "AND", "conditions": [{"field": "vip", "operator": "=", "value": True}]}
    state = manager.update_tag(BOB, draft.tag_id, {"rules": [fixed]})
    assert state.version == 3 and state.spec.rules[0]["conditions"][0]["value"] is True
    assert manager.update_tag(BOB, draft.tag_id, {"active": True}).spec.active


def test_every_rule_problem_is_reported_with_its_location(manager: TagManager) -> None:
    with pytest.raises(DefinitionError) as caught:
        manager.create_tag(ALICE, spec(rules=[NESTED, BROKEN]))
    locations = [where for where, _ in caught.value.problems]
    assert locations == [
        "rules[1].conditions[1].conditions[0].value",
        "rules[1].conditions[1].conditions[1].field",
    ]
    assert manager.list_tags() == []
    draft = manager.create_tag(ALICE, spec(rules=[BROKEN], active=False))
    assert [w for w, _ in draft.problems] == [
        "rules[0].conditions[1].conditions[0].value",
        "rules[0].conditions[1].conditions[1].field",
    ]
    with pytest.raises(DefinitionError):
        manager.update_tag(BOB, draft.tag_id, {"active": True})


def test_a_rule_nested_beyond_reading_is_refused_and_saves_nothing(manager: TagManager) -> None:
    """Even as a draft: ordering, diffing and checking rules walk them recursively."""
    deep: dict[str, Any] = NESTED
    for _ in range(120):
        deep = {"logic": "AND", "conditions": [deep]}
    for active in (True, False):
        with pytest.raises(UsageError, match=r"rule 1 of tag .* nests deeper than 200 levels"):
            manager.create_tag(ALICE, spec(rules=[deep], active=active))
    assert manager.list_tags() == []


def race(racers: int, attempt: Callable[[int], object]) -> list[str]:
    """`attempt(i)` in `racers` threads released at once: each one's outcome (or error code)."""
    start = threading.Barrier(racers)
    outcomes: list[str] = []

    def run(index: int) -> None:
        start.wait()
        try:
            attempt(index)
            outcomes.append("created")
        except TagSysError as exc:
            outcomes.append(getattr(exc, "code", type(exc).__name__))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sorted(outcomes)


def test_racing_creates_leave_every_name_once(manager: TagManager) -> None:
    """Names have no unique key in the original DDL: the check and the write must not
    interleave (on MySQL, REPEATABLE READ transactions all saw the name free: duplicates, and
    deadlocks surfacing to the user)."""
    racers, rounds = 8, 4
    for r in range(rounds):

        def attempt(index: int, r: int = r) -> object:
            if index % 4:
                return manager.create_tag(ALICE, spec(name=f"same-{r}"))
            return manager.create_category(ALICE, f"category-{r}")

        outcomes = race(racers, attempt)
        assert outcomes == ["created"] * 2 + ["duplicate_name"] * (racers - 2), outcomes
    names = sorted(t.spec.name for t in manager.list_tags())
    assert names == [f"same-{r}" for r in range(rounds)]
    categories = [c["name"] for c in manager.list_categories()]
    assert all(categories.count(f"category-{r}") == 1 for r in range(rounds)), categories


def test_unknown_category_and_duplicate_names_are_refused(manager: TagManager) -> None:
    with pytest.raises(DefinitionError) as caught:
        manager.create_tag(ALICE, spec(category="nowhere"))
    assert caught.value.problems[0][0] == "category"
    manager.create_tag(ALICE, spec())
    with pytest.raises(ConflictError) as dup:
        manager.create_tag(ALICE, spec())
    assert dup.value.code == "duplicate_name"
    with pytest.raises(ConflictError):
        manager.create_category(ALICE, "value")


def test_a_stale_version_is_a_conflict_naming_the_current_one(manager: TagManager) -> None:
    tag = manager.create_tag(ALICE, spec())
    manager.update_tag(ALICE, tag.tag_id, {"description": "first"}, expected=1)
    with pytest.raises(ConflictError) as caught:
        manager.update_tag(BOB, tag.tag_id, {"description": "second"}, expected=1)
    assert caught.value.details == {
        "tag_id": tag.tag_id,
        "expected_version": 1,
        "current_version": 2,
    }
    assert manager.get_tag(tag.tag_id).spec.description == "first"


def test_soft_delete_hides_the_tag_from_runs_and_revert_restores_it(manager: TagManager) -> None:
    tag = manager.create_tag(ALICE, spec())
    deleted = manager.delete_tag(BOB, tag.tag_id)
    assert deleted.spec.deleted and deleted.version == 2
    assert manager.list_tags() == []
    assert [t.tag_id for t in manager.list_tags(include_deleted=True)] == [tag.tag_id]
    with pytest.raises(ConflictError):
        manager.update_tag(BOB, tag.tag_id, {"description": "x"})
    manager.create_tag(ALICE, spec(rules=[]))  # its name is free again
    with pytest.raises(ConflictError):  # ... so restoring it would duplicate the name
        manager.revert(BOB, tag.tag_id, 1)
    with pytest.raises(NotFoundError):
        manager.delete_tag(BOB, 999)
    with pytest.raises(NotFoundError):
        manager.revert(BOB, tag.tag_id, 7)


def test_runs_see_a_deleted_tag_as_inactive_and_know_each_version(manager: TagManager) -> None:
    from tagsys.engine.definitions import tag_definition_views

    kept = manager.create_tag(ALICE, spec())
    gone = manager.create_tag(ALICE, spec(name="gone"))
    manager.delete_tag(BOB, gone.tag_id)
    views = {
        v.tag_id: v
        for v in tag_definition_views(manager.engine.url.render_as_string(hide_password=False))
    }
    assert (views[kept.tag_id].is_active, views[kept.tag_id].version) == (True, 1)
    assert (views[gone.tag_id].is_active, views[gone.tag_id].version) == (False, 2)


def test_a_tag_made_outside_management_gets_a_baseline_version(manager: TagManager) -> None:
    tag_id = repository.upsert_tag(bind=manager.engine, tag_name="old", tag_category="people")
    repository.replace_rules(bind=manager.engine, tag_id=tag_id, rules=[NESTED])
    assert manager.get_tag(tag_id).version == 0
    manager.update_tag(Actor("carol"), tag_id, {"active": False})
    history = manager.versions(tag_id)
    assert [(v.version, v.action) for v in history] == [(1, "baseline"), (2, "update")]
    assert history[0].definition["active"] is True
    back = manager.revert(Actor("carol"), tag_id, 1)
    assert back.spec.active and back.spec.rules == (NESTED,)


def test_the_audit_log_lists_every_change_newest_first(manager: TagManager) -> None:
    tag = manager.create_tag(ALICE, spec())
    manager.delete_tag(BOB, tag.tag_id)
    entries = manager.audit()
    assert [(e.entity, e.action, e.actor) for e in entries] == [
        ("tag", "delete", "bob"),
        ("tag", "create", "alice"),
        ("category", "create", "alice"),
        ("category", "create", "alice"),
    ]
    assert manager.audit(limit=2, before=entries[1].audit_id)[0].audit_id == entries[2].audit_id


def test_concurrent_edits_of_one_version_let_exactly_one_win(manager: TagManager) -> None:
    from concurrent.futures import ThreadPoolExecutor

    tag = manager.create_tag(ALICE, spec())

    def edit(text: str) -> str:
        try:
            manager.update_tag(Actor(text), tag.tag_id, {"description": text}, expected=1)
        except ConflictError as exc:
            return f"conflict {exc.details['current_version']}"  # type: ignore[index]
        return "saved"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(edit, ["a", "b", "c", "d"]))
    assert outcomes == ["conflict 2", "conflict 2", "conflict 2", "saved"]
    assert [v.version for v in manager.versions(tag.tag_id)] == [1, 2]
