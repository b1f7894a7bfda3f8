"""Task classes: a new file is picked up; DataFrame hooks run as their own job and are unioned in."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from tagsys.api import TagSystemAPI
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.tasks.registry import default_registry
from tests.engine.lakes import AS_OF, SHOP_TAGS, expected_tags, load_tags

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
    from tests.engine.lakes import lake_rows

    rows = lake_rows(shop_lake, AS_OF)
    for uid, tags in expected.items():
        if 101 in tags and rows[uid].get("customers__city") != "上海":
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
