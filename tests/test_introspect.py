"""list-tasks, validate and explain (`tagsys/introspect.py`) on inactive, invalid and rule-less
tags, and on a user the lake does not have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tagsys.api import TagSystemAPI
from tagsys.errors import NotFoundError, UsageError
from tagsys.introspect import render_problems, render_tasks
from tagsys.settings import load_settings
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tests.engine.lakes import AS_OF, SHOP_TAGS, build_shop_lake, load_tags

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INVALID = {"logic": "AND", "conditions": [{"field": "amount", "operator": "in_range", "value": 5}]}


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path, spark: SparkSession) -> TagSystemAPI:
    """Shop tags, with 105 inactive, 103's rule invalid, 106 without any rule, and 107 a copy of
    105 (`amount is_null`) that is active."""
    build_shop_lake(tmp_path / "lake")
    load_tags(
        sqlite_url,
        {**SHOP_TAGS, 106: ("empty", "misc", []), 107: ("no amount", "x", SHOP_TAGS[105][2])},
    )
    engine = create_store_engine(sqlite_url)
    repository.upsert_tag(
        bind=engine, tag_id=105, tag_name="no orders", tag_category="activity", is_active=False
    )
    repository.replace_rules(bind=engine, tag_id=103, rules=[json.dumps(INVALID)])
    engine.dispose()
    settings = load_settings(
        "local", db_url=sqlite_url, lake_uri=str(tmp_path / "lake"), data_dir=tmp_path / "d"
    )
    return TagSystemAPI(settings=settings, spark=spark)


def test_list_tasks_marks_inactive_invalid_and_ruleless_tags(api: TagSystemAPI) -> None:
    infos = {i.tag_id: i for i in api.list_tasks()}
    assert {t: i.active for t, i in infos.items()} == {
        101: True,
        102: True,
        103: False,
        104: True,
        105: False,
        106: False,
        107: True,
    }
    assert (infos[103].problem or "").startswith("rule is invalid (1 problem)")
    assert infos[104].source_tables == ("customers", "orders")
    assert (infos[106].rules, infos[106].source_tables) == (0, ())
    text = render_tasks(list(infos.values()))
    assert "(rule invalid: see --mode validate)" in text and "(inactive)" in text
    assert text.splitlines()[-1] == "4 computable tags of 7"
    assert api.list_available_tasks() == {
        101: "RuleTagTask",
        102: "RuleTagTask",
        104: "RuleTagTask",
        107: "RuleTagTask",
    }


def test_validate_reports_active_rules_only(api: TagSystemAPI) -> None:
    problems = api.validate_rules()
    assert [(tag_id, p.location) for tag_id, _, p in problems] == [(103, "conditions[0].value")]
    assert "1 problem(s)" in render_problems(problems)
    assert render_problems([]) == "every active rule is valid"


def test_explain_inactive_ruleless_and_unknown_tags(api: TagSystemAPI) -> None:
    assert "the tag is inactive: runs remove it from every user" in api.explain(105, "u0002", AS_OF)
    text = api.explain(106, "u0002", AS_OF)
    assert "no active rule: it applies to no one" in text
    assert text.endswith("=> tag 106 does not apply to u0002")
    with pytest.raises(UsageError, match="tag 999 is not defined"):
        api.explain(999, "u0002", AS_OF)


def test_explain_an_invalid_rule_names_the_problem(api: TagSystemAPI) -> None:
    with pytest.raises(Exception, match="in_range") as info:
        api.explain(103, "u0002", AS_OF)
    assert type(info.value).__module__.startswith("tagsys.")


def test_explain_a_user_missing_from_the_lake_has_nulls(api: TagSystemAPI) -> None:
    """A user in no lake table has nulls: a comparison is false, `is_null` is true."""
    ghost = api.explain(101, "nobody", AS_OF)
    assert "conditions[0]: amount >= 2500 -- user's orders.amount is null -> false" in ghost
    assert ghost.endswith("=> tag 101 does not apply to nobody")
    assert api.explain(107, "nobody", AS_OF).endswith("=> tag 107 applies to nobody")
    # u0001 is a customer without an orders row (i % 5 == 1): the same for its amount
    assert api.explain(107, "u0001", AS_OF).endswith("=> tag 107 applies to u0001")
    assert api.explain(107, "u0002", AS_OF).endswith("=> tag 107 does not apply to u0002")


def test_explain_as_data_is_the_text_s_tree(api: TagSystemAPI) -> None:
    found = api.explain_tag(101, "nobody", AS_OF)
    assert found.render() == api.explain(101, "nobody", AS_OF)
    data = found.to_dict()
    assert (data["tag_id"], data["user_id"], data["as_of"]) == (101, "nobody", AS_OF.isoformat())
    assert data["applies"] is False and data["active"] is True
    condition = data["rules"][0]["root"]["children"][0]
    assert (condition["field"], condition["actual"], condition["result"]) == ("amount", None, False)
    assert api.explain_tag(105, "u0002", AS_OF).to_dict()["rules"] == []  # inactive
    with pytest.raises(NotFoundError, match="tag 999 is not defined"):
        api.explain_tag(999, "u0002", AS_OF)
