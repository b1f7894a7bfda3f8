"""`health` (`tagsys/health.py`): one check per part, each failure reported, never raised."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tagsys.api import TagSystemAPI
from tagsys.health import Check, HealthReport, _attempt
from tagsys.settings import load_settings
from tagsys.store.migrate import upgrade
from tests.engine.lakes import build_shop_lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _api(db_url: str, lake: Path, spark: SparkSession, tmp_path: Path) -> TagSystemAPI:
    settings = load_settings("local", db_url=db_url, lake_uri=str(lake), data_dir=tmp_path / "d")
    return TagSystemAPI(settings=settings, spark=spark)


def test_every_part_healthy(sqlite_url: str, tmp_path: Path, spark: SparkSession) -> None:
    build_shop_lake(tmp_path / "lake")
    upgrade(sqlite_url)
    report = _api(sqlite_url, tmp_path / "lake", spark, tmp_path).health()
    assert [(c.name, c.ok) for c in report.checks] == [
        ("store", True),
        ("runs", True),
        ("audiences", True),
        ("lake", True),
        ("java", True),
        ("spark", True),
    ]
    assert report.checks[1].detail == "no runs recorded yet"
    assert report.checks[2].detail == "not built yet: user_tags is empty (the first run builds it)"
    lake = report.checks[3].detail
    assert "2 tables" in lake and "orders (4 columns, 3 partitions up to 2024-07-31)" in lake
    assert "customers (5 columns)" in lake
    assert report.ok and report.render().endswith("healthy")


def test_unmigrated_store_and_missing_lake_fail_and_the_rest_still_runs(
    sqlite_url: str, tmp_path: Path, spark: SparkSession
) -> None:
    report = _api(sqlite_url, tmp_path / "no-lake", spark, tmp_path).health()
    status = {c.name: c.ok for c in report.checks}
    assert (status["store"], status["lake"], status["java"], status["spark"]) == (
        False,
        False,
        True,
        True,
    )
    assert "schema at nothing" in report.checks[0].detail
    assert "run --mode migrate" in report.checks[0].detail
    assert not report.ok
    assert report.render().splitlines()[-1] == "UNHEALTHY: fix the failed checks above"


def test_an_unexpected_exception_is_a_failed_check() -> None:
    def probe() -> str:
        raise ValueError("disk on fire")

    assert _attempt("lake", probe) == Check("lake", False, "ValueError: disk on fire")
    assert HealthReport("local", [Check("a", True, "x"), Check("b", False, "y")]).ok is False
