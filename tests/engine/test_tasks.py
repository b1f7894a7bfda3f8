"""Task classes: a new file is picked up; DataFrame hooks run as their own job and are unioned in."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pyarrow as pa

from tagsys.api import TagSystemAPI
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.tasks.base import BaseTagTask
from tagsys.tasks.registry import default_registry
from tests.engine.lakes import AS_OF, SHOP_TAGS, expected_tags, load_tags, write_table
from tests.oracle import read_lake

PLUGIN = '''
from pyspark.sql import functions as F

from tagsys.tasks.base import BaseTagTask


class BigSpenderInShanghai(BaseTagTask):
    """Tag 101, but only for customers whose city is 上海 (a DataFrame-level hook)."""

    tag_id = 101
    domain = "custom"
    required_fields = ("city",)
    data_sources = {"primary": "orders", "secondary": "customers"}

    def preprocess_data(self, raw_data):
        return raw_data.where(F.col("city") == "上海")
'''


def test_new_task_file_is_discovered_and_runs_as_own_job(
    tmp_path: Path, make_api, sqlite_url: str, shop_lake: Path
) -> None:
    package = tmp_path / "plugins" / "shop_tasks"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "big_spender.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    sys.path.insert(0, str(package.parent))
    load_tags(sqlite_url, SHOP_TAGS)
    try:
        api: TagSystemAPI = make_api(sqlite_url, shop_lake, task_packages=["shop_tasks"])
        tasks = {t.tag_id: t for t in api.list_tasks()}
        assert tasks[101].task_class == "BigSpenderInShanghai"
        assert tasks[101].domain == "custom"
        assert tasks[102].task_class == "RuleTagTask"
        summary = api.run(api.request("task-all", as_of=AS_OF))
        assert summary.succeeded, summary.render()
    finally:
        sys.path.remove(str(package.parent))
        default_registry.unregister(101)
        sys.modules.pop("shop_tasks.big_spender", None)
        sys.modules.pop("shop_tasks", None)

    expected = expected_tags(shop_lake, SHOP_TAGS, AS_OF)
    rows = read_lake(shop_lake, AS_OF)
    for uid, tags in expected.items():
        if 101 in tags and rows[uid].get("customers", {}).get("city") != "上海":
            tags.discard(101)
    engine = create_store_engine(sqlite_url)
    stored = {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    engine.dispose()
    assert stored == {u: sorted(t) for u, t in expected.items() if t}
    assert any(101 in t for t in stored.values())


def test_seed_task_class_with_other_name_falls_back_to_rule_task() -> None:
    default_registry.discover()
    assert default_registry.get(1, "高净值用户").__name__ == "HighNetWorthUserTask"
    assert default_registry.get(1, "something else").__name__ == "RuleTagTask"
    assert default_registry.get(12345).__name__ == "RuleTagTask"


def ids(db_url: str) -> dict[str, list[int]]:
    engine = create_store_engine(db_url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


def test_own_job_task_sees_users_missing_from_its_primary_source(
    make_api, sqlite_url: str, shop_lake: Path
) -> None:
    """A task class run as its own job (a hook overridden, changing nothing) tags exactly the
    users its rule holds for, including users absent from its primary table: they have nulls
    (SPEC 3), so `amount is_null` (tag 105) holds for them."""

    class NoOrdersTask(BaseTagTask):
        tag_id = 105
        domain = "review"
        data_sources = {"primary": "orders", "secondary": "customers"}  # noqa: RUF012

        def post_process_result(self, tagged_users):  # type: ignore[no-untyped-def]
            return tagged_users  # same result, but forces the own-job path

    tags = {105: SHOP_TAGS[105]}
    load_tags(sqlite_url, tags)
    try:
        api: TagSystemAPI = make_api(sqlite_url, shop_lake)
        summary = api.run(api.request("task-all", as_of=AS_OF))
        assert summary.succeeded, summary.render()
    finally:
        default_registry.unregister(105)
    expected = {u: sorted(t) for u, t in expected_tags(shop_lake, tags, AS_OF).items() if t}
    got = ids(sqlite_url)
    missing = sorted(set(expected) - set(got))
    assert got == expected, f"users the rule holds for but never tagged: {missing[:5]}"


TWO_CHANNELS = pa.schema([("user_id", pa.string()), ("channel", pa.string())])


def test_own_job_task_reads_a_qualified_field_from_the_named_table(
    make_api, sqlite_url: str, tmp_path: Path
) -> None:
    """A task run as its own job reads a qualified field `b.channel` from table b, even when
    its primary source `a` has a column of the same name."""
    lake = tmp_path / "lake"
    write_table(
        lake,
        "a",
        [{"user_id": "u1", "channel": "x"}, {"user_id": "u2", "channel": "y"}],
        TWO_CHANNELS,
    )
    write_table(
        lake,
        "b",
        [{"user_id": "u1", "channel": "y"}, {"user_id": "u2", "channel": "x"}],
        TWO_CHANNELS,
    )
    rule = {"logic": "AND", "conditions": [{"field": "b.channel", "operator": "=", "value": "x"}]}
    load_tags(sqlite_url, {202: ("b is x", "t", [rule])})

    class ChannelTask(BaseTagTask):
        tag_id = 202
        domain = "review"
        data_sources = {"primary": "a", "secondary": "b"}  # noqa: RUF012

        def preprocess_data(self, raw_data):  # type: ignore[no-untyped-def]
            return raw_data

    try:
        api: TagSystemAPI = make_api(sqlite_url, lake)
        summary = api.run(api.request("task-all", as_of=AS_OF))
        assert summary.succeeded, summary.render()
    finally:
        default_registry.unregister(202)
    assert ids(sqlite_url) == {"u2": [202]}
