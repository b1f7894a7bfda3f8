"""The audience index over real runs (Spark) on SQLite and MariaDB: after first runs, rule
changes, task-users runs, stale users and rollbacks, every random expression's members
equal the brute-force evaluation over user_tags (SPEC section 10)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tagsys.api import TagSystemAPI
from tagsys.cli import main
from tagsys.store import audiences as store
from tests.audiences.support import brute_force, expressions, table
from tests.engine.conftest import MakeApi
from tests.engine.lakes import AS_OF, SHOP_TAGS, build_shop_lake, load_tags

pytestmark = pytest.mark.spark

TAG_IDS = sorted(SHOP_TAGS)
NAMES = {name: tag_id for tag_id, (name, _, _) in SHOP_TAGS.items()}
EVERYONE_OVER_20 = [
    {"logic": "AND", "conditions": [{"field": "age", "operator": ">", "value": 20}]}
]


def _run(api: TagSystemAPI, mode: str, **kwargs: Any) -> str:
    summary = api.run(api.request(mode, as_of=AS_OF, **kwargs))
    assert summary.succeeded, summary.render()
    return summary.run_id


def _check(api: TagSystemAPI, url: str, step: str) -> None:
    """The index holds exactly user_tags: per-tag counts, and random expressions' members."""
    rows = table(url)
    engine = api.audiences.engine
    indexed = {t: c for t, c in store.member_counts(bind=engine).items() if c}
    assert indexed == {t: c for t, c in store.row_counts(bind=engine).items() if c}, step
    assert indexed[store.UNIVERSE] == len(rows), step
    members_of = _members(api)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(expressions(TAG_IDS, list(NAMES)))
    def agrees(expression: Any) -> None:
        want = brute_force(expression, rows, NAMES)
        assert api.audience(expression).count == len(want), (step, expression)
        assert members_of(expression) == want, (step, expression)

    agrees()


def _members(api: TagSystemAPI) -> Any:
    def members(expression: Any) -> set[str]:
        got: list[str] = []
        cursor = None
        while True:
            page = api.audiences.members(expression, cursor, limit=7)
            got.extend(page.users)
            cursor = page.next_cursor
            if cursor is None:
                return set(got)

    return members


def test_index_follows_every_kind_of_write(
    db_url: str, shop_lake: Path, make_api: MakeApi, tmp_path: Path
) -> None:
    load_tags(db_url, SHOP_TAGS)
    api = make_api(db_url, shop_lake)
    _run(api, "task-tags", tag_ids=[101, 102])
    _check(api, db_url, "first run of two tags")
    _run(api, "task-all")
    _check(api, db_url, "task-all")
    built = store.read_state(bind=api.audiences.engine)
    assert api.run(api.request("task-all", as_of=AS_OF, dry_run=True)).succeeded
    load_tags(db_url, {103: ("not vip", "people", EVERYONE_OVER_20)})
    changed = _run(api, "task-all")
    _check(api, db_url, "rule change")
    _run(api, "task-users", user_ids=["u0001", "u0002", "u0003", "u0040"], tag_ids=[101, 104])
    _check(api, db_url, "task-users")
    undo = api.rollback(changed)
    assert undo.status == "completed", undo
    _check(api, db_url, "rollback")
    state = store.read_state(bind=api.audiences.engine)
    assert state.rebuilt_at == built.rebuilt_at, "journaled runs are taken in, not rebuilt"
    assert state.generation == built.generation + 3 and state.run_id == undo.run_id
    smaller = tmp_path / "smaller"
    shutil.rmtree(smaller, ignore_errors=True)
    build_shop_lake(smaller, users=40)  # users 40..59 leave the lake: their tags go
    stale = make_api(db_url, smaller)
    _run(stale, "task-all")
    _check(stale, db_url, "stale users")
    assert api.reindex().rebuilt
    _check(api, db_url, "reindex")


def test_cli_counts_samples_exports_and_reindexes(
    sqlite_url: str,
    shop_lake: Path,
    make_api: MakeApi,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    load_tags(sqlite_url, SHOP_TAGS)
    api = make_api(sqlite_url, shop_lake)
    _run(api, "task-all")
    rows = table(sqlite_url)
    expression = {"and": ["big spender", {"not": 103}]}
    want = brute_force(expression, rows, NAMES)
    base = ["--db-url", sqlite_url, "--lake-uri", str(shop_lake), "--mode"]

    assert main([*base, "audience", "--expr", json.dumps(expression), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == len(want)
    assert main([*base, "audience", "--expr", json.dumps(expression), "--sample", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{len(want)} users; a sample of 3:" and set(printed[1:]) <= want
    seeded = [*base, "audience", "--expr", json.dumps(expression), "--sample", "3", "--seed", "5"]
    assert main(seeded) == 0 and main(seeded) == 0
    twice = capsys.readouterr().out.splitlines()
    assert twice[:4] == twice[4:]  # a given seed gives the same sample
    assert main([*base, "audience", "--expr", json.dumps(expression), "--sample", "0"]) == 1
    assert "sample size 0: give 1 to" in capsys.readouterr().err
    out = tmp_path / "members.csv"
    assert main([*base, "audience", "--expr", json.dumps(expression), "--export", str(out)]) == 0
    assert set(out.read_text().split()[1:]) == {f'"{u}"' for u in want}
    assert main([*base, "audience", "--expr", "{not json"]) == 1
    assert "--expr is not JSON" in capsys.readouterr().err
    assert main([*base, "audience", "--expr", '{"and": [101, 999]}']) == 1
    assert "$.and[1]: unknown tag id 999" in capsys.readouterr().err
    assert main([*base, "reindex"]) == 0
    assert "rebuilt from user_tags" in capsys.readouterr().out


def test_cli_answers_take_in_a_run_whose_process_died_before_its_maintenance(
    sqlite_url: str, shop_lake: Path, make_api: MakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    load_tags(sqlite_url, SHOP_TAGS)
    _run(make_api(sqlite_url, shop_lake), "task-all")
    load_tags(sqlite_url, {103: ("not vip", "people", EVERYONE_OVER_20)})
    expression = {"and": ["big spender", {"not": 103}]}
    before = len(brute_force(expression, table(sqlite_url), NAMES))
    # A run whose process stopped after recording its end, before taking it in:
    _run(make_api(sqlite_url, shop_lake, audience_index=False), "task-all")
    want = brute_force(expression, table(sqlite_url), NAMES)
    assert len(want) != before
    base = ["--db-url", sqlite_url, "--lake-uri", str(shop_lake), "--mode"]

    assert main([*base, "audience", "--expr", json.dumps(expression), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == len(want)
    assert store.read_state(bind=make_api(sqlite_url, shop_lake).audiences.engine).generation == 2
