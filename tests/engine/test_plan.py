"""Planning a run (`engine/plan.py`): request validation, the tag scope S, and faults."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tagsys.engine.plan import RunRequest, plan_run, relative_date_tags
from tagsys.errors import UsageError
from tagsys.lake.catalog import LakeCatalog
from tagsys.rules.compiler import RuleSource
from tagsys.tasks.base import TagDefinitionView
from tagsys.tasks.registry import default_registry
from tests.engine.lakes import AS_OF, SHOP_TAGS, build_shop_lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

D = date(2024, 6, 30)

BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown mode", {"mode": "task-some"}, "unknown run mode 'task-some'"),
    ("task-tags without tags", {"mode": "task-tags"}, "task-tags needs --tag-ids"),
    ("task-tags with an empty list", {"mode": "task-tags", "tag_ids": ()}, "needs --tag-ids"),
    ("task-users without users", {"mode": "task-users"}, "task-users needs --user-ids"),
    ("task-users, empty users", {"mode": "task-users", "user_ids": ()}, "needs --user-ids"),
    (
        "task-users, empty tags",
        {"mode": "task-users", "user_ids": ("a",), "tag_ids": ()},
        "tag id list is empty",
    ),
    ("incremental without days", {"mode": "incremental"}, "needs --days N"),
    ("incremental, negative days", {"mode": "incremental", "days": -1}, "needs --days N"),
    (
        "incremental, empty tags",
        {"mode": "incremental", "days": 1, "tag_ids": ()},
        "tag id list is empty",
    ),
    ("task-all with tag ids", {"mode": "task-all", "tag_ids": (1,)}, "task-all runs every tag"),
    ("task-all with users", {"mode": "task-all", "user_ids": ("a",)}, "runs over all users"),
    (
        "task-tags with users",
        {"mode": "task-tags", "tag_ids": (1,), "user_ids": ("a",)},
        "task-tags runs over all users",
    ),
    (
        "incremental with users",
        {"mode": "incremental", "days": 1, "user_ids": ("a",)},
        "incremental runs over all users",
    ),
]


@pytest.mark.parametrize(
    ("fields", "message"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS]
)
def test_contradictory_or_empty_scopes_are_usage_errors(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        RunRequest(as_of=D, **fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"mode": "task-all"},
        {"mode": "task-tags", "tag_ids": (1,)},
        {"mode": "task-users", "user_ids": ("a",)},
        {"mode": "task-users", "user_ids": ("a",), "tag_ids": (1, 2)},
        {"mode": "incremental", "days": 0},
        {"mode": "incremental", "days": 3, "tag_ids": (2,)},
    ],
)
def test_consistent_requests_are_accepted(fields: dict[str, Any]) -> None:
    assert RunRequest(as_of=D, **fields).mode == fields["mode"]


def test_an_as_of_before_1900_is_a_usage_error() -> None:
    """Rules count up to 100,000 days back from as_of: from year 1 that leaves the calendar."""
    with pytest.raises(UsageError, match="as_of 0001-01-01 is too early: use a date from 1900"):
        RunRequest("task-all", date(1, 1, 1))
    assert RunRequest("task-all", date(1900, 1, 1)).as_of.year == 1900


def _view(tag_id: int, *, active: bool = True, rules: list[Any] | None = None) -> TagDefinitionView:
    name, category, default_rules = SHOP_TAGS.get(tag_id, (f"t{tag_id}", "c", []))
    texts = [json.dumps(r) for r in (default_rules if rules is None else rules)]
    return TagDefinitionView(
        tag_id, name, category, tuple(RuleSource(i + 1, t) for i, t in enumerate(texts)), active
    )


@pytest.fixture
def shop_schema(tmp_path: Path, spark: SparkSession) -> Any:
    build_shop_lake(tmp_path / "lake")
    return LakeCatalog(str(tmp_path / "lake")).schema()


def test_task_all_scope_is_every_id_minus_failed_tags(shop_schema: Any) -> None:
    """S on task-all covers every id, also unknown (deleted) ones; an inactive tag is in S but
    not computed; a tag whose rule is invalid is a fault and leaves S."""
    definitions = [
        _view(101),
        _view(104),
        _view(105, active=False),
        _view(
            103, rules=[{"logic": "AND", "conditions": [{"field": "nope", "operator": "is_null"}]}]
        ),
    ]
    plan = plan_run(RunRequest("task-all", AS_OF), definitions, shop_schema, default_registry)
    assert [t.tag_id for t in plan.tags] == [101, 104]
    assert [f.tag_id for f in plan.faults] == [103]
    assert "nope" in plan.faults[0].message
    covered = {t for t in (101, 103, 104, 105, 999) if plan.scope.covers(t)}
    assert covered == {101, 104, 105, 999}
    assert relative_date_tags(plan) == [104]
    assert plan.columns_by_table() == {
        "orders": {"amount", "last_order", "channel"},
        "customers": {"joined"},
    }


def test_task_tags_scope_is_exactly_the_listed_ids(shop_schema: Any) -> None:
    definitions = [_view(101), _view(102), _view(103)]
    request = RunRequest("task-tags", AS_OF, tag_ids=(102,))
    plan = plan_run(request, definitions, shop_schema, default_registry)
    assert [t.tag_id for t in plan.tags] == [102]
    assert {t for t in (101, 102, 103, 999) if plan.scope.covers(t)} == {102}


def test_unknown_listed_tag_is_a_usage_error_naming_the_known_ones(shop_schema: Any) -> None:
    request = RunRequest("task-tags", AS_OF, tag_ids=(101, 7, 8))
    with pytest.raises(UsageError, match=r"tag id\(s\) 7, 8 are not defined.*defined tags: 101"):
        plan_run(request, [_view(101)], shop_schema, default_registry)
