"""Task classes (`tasks/`): registration by definition, discovery, the seed's factory, and a
task whose `validate_data` rejects its input."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from tagsys.api import TagSystemAPI
from tagsys.demo.seed_tags import SEED_TAGS
from tagsys.errors import TaskError
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.tasks.base import BaseTagTask, TagDefinitionView
from tagsys.tasks.registry import TagTaskFactory, TaskRegistry, default_registry
from tagsys.tasks.rule_task import RuleTagTask
from tests.engine.lakes import AS_OF, SHOP_TAGS, expected_tags, load_tags

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def test_registry_maps_ids_and_falls_back_to_the_rule_task() -> None:
    registry = TaskRegistry()
    cls = type("Nine", (BaseTagTask,), {"__module__": "tests.fake", "expected_name": "nine"})
    cls.tag_id = 9  # set after creation: not registered in the default registry
    assert registry.register(cls) is cls
    assert registry.get(9) is cls
    assert registry.get(9, "nine") is cls
    assert registry.get(9, "something else") is RuleTagTask, "the id means another tag here"
    assert registry.get(10) is RuleTagTask
    assert registry.registered() == {9: cls}
    registry.register(cls)  # the same class again (a module imported twice) is fine
    other = type("Other", (BaseTagTask,), {"__module__": "tests.fake"})
    other.tag_id = 9
    with pytest.raises(TaskError, match="tag 9 has two task classes"):
        registry.register(other)
    registry.unregister(9)
    assert registry.get(9) is RuleTagTask
    nameless = type("NoId", (BaseTagTask,), {"__module__": "tests.fake"})
    with pytest.raises(TaskError, match="has no tag_id"):
        registry.register(nameless)


def test_factory_refuses_a_class_declared_for_another_id() -> None:
    cls = type("Twelve", (BaseTagTask,), {"__module__": "tests.fake"})
    cls.tag_id = 12
    with pytest.raises(TaskError, match="declares tag_id 12, not 13"):
        TagTaskFactory.register_task(13, cls)


def test_builtin_discovery_finds_the_seeds_eight_task_classes() -> None:
    tasks = TagTaskFactory.get_all_available_tasks()
    for seed in SEED_TAGS:
        cls = tasks[seed.tag_id]
        assert cls.expected_name == seed.tag_name
        assert cls.__module__.startswith("tagsys.tasks.")
        assert cls.__module__.split(".")[2] != "base"


@pytest.fixture
def plugin_package(tmp_path: Path) -> Iterator[str]:
    package = tmp_path / "my_tasks_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "vip.py").write_text(
        textwrap.dedent(
            """
            from tagsys.tasks.base import BaseTagTask

            class VipTask(BaseTagTask):
                tag_id = 4242
                domain = "plugins"
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield "my_tasks_pkg"
    finally:
        sys.path.remove(str(tmp_path))
        default_registry.unregister(4242)
        for name in [m for m in sys.modules if m.startswith("my_tasks_pkg")]:
            del sys.modules[name]


def test_discovery_imports_every_module_of_a_configured_package(plugin_package: str) -> None:
    """Adding a file (here in a sub-package) is enough: no second registration step."""
    assert default_registry.get(4242) is RuleTagTask
    default_registry.discover([plugin_package])
    found = default_registry.get(4242)
    assert (found.__name__, found.domain) == ("VipTask", "plugins")


def test_an_unimportable_task_package_is_a_task_error() -> None:
    with pytest.raises(TaskError, match="task package 'no_such_tasks_pkg' cannot be imported"):
        default_registry.discover(["no_such_tasks_pkg"])


def test_base_task_api() -> None:
    view = TagDefinitionView(5, "low risk", "risk")
    cls = type("T", (BaseTagTask,), {"__module__": "tests.fake", "required_fields": ("a", "b")})
    task = cls(view)
    assert (task.tag_name, task.tag_category) == ("low risk", "risk")
    assert task.get_required_fields() == ["user_id", "a", "b"]
    assert cls.runs_in_one_pass()
    hooked = type("H", (cls,), {"preprocess_data": lambda self, raw_data: raw_data})
    assert not hooked.runs_in_one_pass()


def test_validate_data_false_fails_only_that_tag(
    make_api: Any, sqlite_url: str, shop_lake: Path
) -> None:
    """A task whose validate_data rejects its input fails its tag, with the class named;
    the other tags run, and the failed tag's existing assignments stay as they were."""

    class Picky(BaseTagTask):
        tag_id = 104
        domain = "test"
        data_sources = {"primary": "orders", "secondary": "customers"}  # noqa: RUF012

        def preprocess_data(self, raw_data: DataFrame) -> DataFrame:
            return raw_data

        def validate_data(self, data: DataFrame) -> bool:
            return False

    load_tags(sqlite_url, SHOP_TAGS)
    engine = create_store_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO user_tags (user_id, tag_ids, tag_details, created_time, updated_time)"
                " VALUES ('u0005', '[104]', :d, '2020-01-01 00:00:00', '2020-01-01 00:00:00')"
            ),
            {"d": json.dumps({"104": {"tag_name": "recent buyer", "tag_category": "activity"}})},
        )
    engine.dispose()
    try:
        api: TagSystemAPI = make_api(sqlite_url, shop_lake)
        summary = api.run(api.request("task-all", as_of=AS_OF))
    finally:
        default_registry.unregister(104)
    outcomes = {t.tag_id: t.status for t in summary.tags}
    assert outcomes == {101: "ok", 102: "ok", 103: "ok", 104: "failed", 105: "ok"}
    assert "Picky.validate_data rejected its input" in (summary.failed_tags[0].message or "")
    expected = expected_tags(shop_lake, SHOP_TAGS, AS_OF)
    engine = create_store_engine(sqlite_url)
    stored = {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    engine.dispose()
    want = {u: sorted(t - {104}) for u, t in expected.items() if t - {104}}
    want["u0005"] = sorted((expected.get("u0005", set()) - {104}) | {104})
    assert stored == want
