"""The Python API (`tagsys/api.py`): the seed's boolean calls, `last_summary`, every run's
`tag_runs` row, the convenience functions and the `tag_system_api` module, and sharing an
existing SparkSession."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import tag_system_api
import tagsys.api
from tagsys.api import (
    TagSystemAPI,
    get_available_tasks,
    run_all_tasks,
    run_health_check,
    run_specific_tags,
    run_specific_users_tags,
)
from tagsys.store import repository, runs
from tagsys.store.db import create_store_engine
from tagsys.tasks.base import BaseTagTask
from tagsys.tasks.registry import default_registry
from tests.engine.lakes import AS_OF, SHOP_TAGS, expected_tags, load_tags

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

BROKEN = {"logic": "AND", "conditions": [{"field": "no_such_field", "operator": "is_null"}]}


def stored_ids(db_url: str) -> dict[str, list[int]]:
    engine = create_store_engine(db_url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


def run_row(db_url: str, run_id: str) -> runs.RunRecord:
    engine = create_store_engine(db_url)
    try:
        record = runs.get_run(bind=engine, run_id=run_id)
    finally:
        engine.dispose()
    assert record is not None, f"run {run_id} has no tag_runs row"
    return record


def test_boolean_calls_and_last_summary(shop: TagSystemAPI, shop_lake: Path) -> None:
    """True on success; False on a failed tag and on an error, each with its summary in
    last_summary."""
    assert shop.last_summary is None
    assert shop.run_task_all_users_all_tags(as_of=AS_OF) is True
    first = shop.last_summary
    assert first is not None and first.mode == "task-all" and first.succeeded

    engine = create_store_engine(shop.db_url)
    repository.replace_rules(bind=engine, tag_id=103, rules=[json.dumps(BROKEN)])
    engine.dispose()
    assert shop.run_task_specific_tags([101, 103], as_of=AS_OF) is False
    failed = shop.last_summary
    assert failed is not None and failed is not first
    assert [t.tag_id for t in failed.failed_tags] == [103]

    assert shop.run_task_specific_tags([999], as_of=AS_OF) is False  # unknown id: an error
    errored = shop.last_summary
    assert errored is not None and errored is not failed and not errored.succeeded
    assert errored.error is not None and "999" in errored.error

    users = ["u0002", "u0004"]
    assert shop.run_task_specific_users_specific_tags(users, [101], as_of=AS_OF) is True
    assert shop.last_summary is not None and shop.last_summary.users_evaluated == 2
    assert shop.run_incremental(days=1, as_of=AS_OF) is False, "customers has no change column"


def test_every_run_leaves_its_tag_runs_row(shop: TagSystemAPI) -> None:
    """Read back after a completed and after a failed run: mode, as_of, status, times and the
    summary's counts as stored."""
    ok = shop.run(shop.request("task-tags", tag_ids=[101], as_of=AS_OF))
    row = run_row(shop.db_url, ok.run_id)
    assert (row.mode, row.as_of, row.status) == ("task-tags", AS_OF, "completed")
    assert row.finished_at is not None and row.finished_at >= row.started_at
    assert row.summary is not None
    assert row.summary["rows_inserted"] == ok.rows_inserted > 0
    assert row.summary["tags"][0]["tag_id"] == 101

    engine = create_store_engine(shop.db_url)
    repository.replace_rules(bind=engine, tag_id=102, rules=[json.dumps(BROKEN)])
    engine.dispose()
    bad = shop.run(shop.request("task-all", as_of=AS_OF))
    row = run_row(shop.db_url, bad.run_id)
    assert (row.mode, row.status) == ("task-all", "failed")
    assert row.summary is not None and row.summary["status"] == "failed"
    failed = [t for t in row.summary["tags"] if t["status"] == "failed"]
    assert [t["tag_id"] for t in failed] == [102] and "no_such_field" in failed[0]["message"]


def test_default_as_of_is_today_in_the_configured_time_zone(
    make_api: Any, sqlite_url: str, shop_lake: Path
) -> None:
    """UTC+14 and UTC-12 are always on different dates; each API's default as_of is its own."""
    dates = []
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        api: TagSystemAPI = make_api(sqlite_url, shop_lake, timezone=zone)
        before = datetime.now(ZoneInfo(zone)).date()
        as_of = api.request("task-all").as_of
        after = datetime.now(ZoneInfo(zone)).date()
        assert as_of in (before, after)
        dates.append(as_of)
    assert dates[0] != dates[1]


def test_spark_conf_setting_applies_during_a_run_and_is_restored(
    make_api: Any, sqlite_url: str, shop_lake: Path, spark: SparkSession
) -> None:
    """TAGSYS_SPARK_CONF overrides the run's own session settings for the run only; the run's
    session time zone is the business one; both are put back on a shared session."""
    seen: dict[str, str | None] = {}

    class ConfSpy(BaseTagTask):
        tag_id = 101
        domain = "test"
        data_sources = {"primary": "orders", "secondary": None}  # noqa: RUF012

        def preprocess_data(self, raw_data: DataFrame) -> DataFrame:
            conf = raw_data.sparkSession.conf
            seen["codegen"] = conf.get("spark.sql.codegen.wholeStage")
            seen["zone"] = conf.get("spark.sql.session.timeZone")
            return raw_data

    before = {
        k: spark.conf.get(k) for k in ("spark.sql.codegen.wholeStage", "spark.sql.session.timeZone")
    }
    load_tags(sqlite_url, {101: SHOP_TAGS[101]})
    os.environ["TAGSYS_SPARK_CONF"] = '{"spark.sql.codegen.wholeStage": "true"}'
    try:
        api: TagSystemAPI = make_api(sqlite_url, shop_lake, timezone="Asia/Shanghai")
    finally:
        del os.environ["TAGSYS_SPARK_CONF"]
    try:
        assert api.settings.spark_conf == {"spark.sql.codegen.wholeStage": "true"}
        assert api.run(api.request("task-all", as_of=AS_OF)).succeeded
    finally:
        default_registry.unregister(101)
    assert seen == {"codegen": "true", "zone": "Asia/Shanghai"}
    assert {k: spark.conf.get(k) for k in before} == before


@pytest.mark.parametrize("partitions", [1, 3])
def test_write_partitions_setting_gives_the_same_rows(
    make_api: Any,
    sqlite_url: str,
    shop_lake: Path,
    partitions: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TAGSYS_WRITE_PARTITIONS", str(partitions))
    load_tags(sqlite_url, SHOP_TAGS)
    api: TagSystemAPI = make_api(sqlite_url, shop_lake)
    assert api.settings.write_partitions == partitions
    assert api.run(api.request("task-all", as_of=AS_OF)).succeeded
    expected = {u: sorted(t) for u, t in expected_tags(shop_lake, SHOP_TAGS, AS_OF).items() if t}
    assert stored_ids(sqlite_url) == expected


@pytest.fixture
def seed_env(
    sqlite_url: str,
    shop_lake: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spark: SparkSession,
) -> str:
    """The convenience functions read the environment, as the seed's callers do."""
    for name in list(os.environ):
        if name.startswith(("TAGSYS_", "MYSQL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TAGSYS_DB_URL", sqlite_url)
    monkeypatch.setenv("TAGSYS_LAKE_URI", str(shop_lake))
    monkeypatch.setenv("TAGSYS_DATA_DIR", str(tmp_path / "data"))
    load_tags(sqlite_url, SHOP_TAGS)
    return sqlite_url


def test_convenience_functions_run_and_share_the_active_session(
    seed_env: str, shop_lake: Path, spark: SparkSession
) -> None:
    """Each function opens and closes an API; the active SparkSession (a notebook's, Glue's,
    this suite's) is reused and survives."""
    assert run_health_check() is True
    assert get_available_tasks() == {t: "RuleTagTask" for t in SHOP_TAGS}
    assert run_specific_tags([101]) is True
    assert {t for ts in stored_ids(seed_env).values() for t in ts} == {101}
    assert run_specific_users_tags(["u0003"], [103]) is True
    assert run_all_tasks() is True
    assert run_specific_tags([999]) is False
    assert spark.range(3).count() == 3, "the shared session must not be stopped"


def test_api_reuses_and_never_stops_a_session_it_did_not_start(
    seed_env: str, spark: SparkSession
) -> None:
    with TagSystemAPI("local") as api:
        assert api.spark is spark
    assert spark.range(2).count() == 2
    given = TagSystemAPI("local", spark=spark)
    given.close()
    assert spark.range(1).count() == 1


def test_tag_system_api_module_is_the_same_api() -> None:
    for name in tag_system_api.__all__:
        assert getattr(tag_system_api, name) is getattr(tagsys.api, name)
    assert set(tag_system_api.__all__) >= {
        "TagSystemAPI",
        "run_all_tasks",
        "run_health_check",
        "run_specific_tags",
        "run_specific_users_tags",
        "get_available_tasks",
    }


def test_dry_run_on_a_store_with_rows_reports_changes_and_writes_nothing(
    shop: TagSystemAPI, shop_lake: Path
) -> None:
    """After a run at AS_OF, a dry run at a later as_of reports per tag the users that would
    be added and removed, and the rows that would be updated, and leaves the store as it was."""
    later = AS_OF.replace(month=8, day=20)
    shop.run(shop.request("task-all", as_of=AS_OF))
    before = stored_ids(shop.db_url)
    engine = create_store_engine(shop.db_url)
    with engine.connect() as conn:
        stamps = dict(conn.execute(sa.text("SELECT user_id, updated_time FROM user_tags")).all())
    engine.dispose()

    dry = shop.run(shop.request("task-all", as_of=later, dry_run=True))
    assert dry.succeeded and dry.dry_run
    after = {u: sorted(t) for u, t in expected_tags(shop_lake, SHOP_TAGS, later).items()}
    for tag in dry.tags:
        had = {u for u, t in before.items() if tag.tag_id in t}
        has = {u for u, t in after.items() if tag.tag_id in t}
        assert (tag.added, tag.removed) == (len(has - had), len(had - has)), tag
    assert dry.rows_updated == sum(before[u] != after.get(u, []) for u in before)
    assert dry.rows_inserted == sum(1 for u, t in after.items() if t and u not in before)
    assert dry.rows_updated > 0 and any(t.removed for t in dry.tags)
    assert stored_ids(shop.db_url) == before
    engine = create_store_engine(shop.db_url)
    with engine.connect() as conn:
        assert (
            dict(conn.execute(sa.text("SELECT user_id, updated_time FROM user_tags")).all())
            == stamps
        )
    engine.dispose()
