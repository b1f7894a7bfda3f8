"""The benchmark harness end to end on tiny data: equality checks pass, the report has its keys."""

from __future__ import annotations

import sys
import uuid
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import sqlgen  # noqa: E402
from bench.rulegen import bench_tags  # noqa: E402
from bench.run import BenchConfig, run_benchmark  # noqa: E402
from tests.conftest import MYSQL_SERVER_URL  # noqa: E402

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPORT_KEYS = {"users", "tags", "machine", "phases", "rows_written", "baselines", "ratios"}
RATIO_KEYS = {
    "compute_vs_spark_sql",
    "compute_vs_duckdb",
    "write_vs_bulk_load",
    "end_to_end_vs_naive",
    "first_run_journal_on_vs_off",
    "changed_journal_on_vs_off",
    "unchanged_journal_on_vs_off",
}


def test_generated_rules_are_deterministic_and_cover_every_operator() -> None:
    first = bench_tags(300, seed=7)
    assert [t.rules for t in first] == [t.rules for t in bench_tags(300, seed=7)]
    operators: set[str] = set()
    logics: set[str] = set()

    def walk(node: dict) -> None:
        if "logic" in node:
            logics.add(node["logic"])
            for child in node["conditions"]:
                walk(child)
        else:
            operators.add(node["operator"])

    for tag in first:
        for rule in tag.rules:
            walk(rule)
    from tagsys.rules.model import OPERATORS

    assert operators == set(OPERATORS)
    assert logics == {"AND", "OR", "NOT"}


def test_translator_keeps_null_and_literal_semantics() -> None:
    as_of = date(2025, 6, 30)
    rule = {
        "logic": "NOT",
        "conditions": [{"field": "user_level", "operator": "contains", "value": "50%_'"}],
    }
    assert sqlgen.group(rule, as_of, "duckdb") == (
        "NOT ((COALESCE(contains(user_level, '50%_'''), FALSE)))"
    )
    recent = {"field": "last_login_date", "operator": "recent_days", "value": 7}
    assert "BETWEEN DATE '2025-06-23' AND DATE '2025-06-30'" in sqlgen.condition(
        recent, as_of, "spark"
    )


def _check(result: dict, with_bulk: bool) -> None:
    assert set(result) >= REPORT_KEYS
    assert set(result["ratios"]) == RATIO_KEYS
    assert result["checks"]["ok"], result["checks"]
    assert all(s["equal"] for s in result["checks"]["sources"].values())
    assert result["checks"]["unchanged_writes_zero"]
    assert result["checks"]["changed_writes_only_changed"]
    expected = {"naive", "spark_sql", "duckdb"} | ({"bulk_load"} if with_bulk else set())
    assert expected <= set(result["baselines"])
    assert result["rows_written"]["first_run"][0]["inserted"] > 0
    assert {"compute", "first_run", "unchanged_run", "changed_run"} <= set(result["phases"])
    assert {"cores", "memory_gb", "pyspark", "duckdb", "database"} <= set(result["machine"])


def _small(db_url: str, cache: Path, journal_runs: bool = False) -> BenchConfig:
    """2000 users and 20 tags, one repeat, no cold runs: the whole harness in CI time."""
    return BenchConfig(
        users=2000,
        tags=20,
        db_url=db_url,
        repeat=1,
        cache=cache,
        cold_runs=False,
        journal_runs=journal_runs,
    )


@pytest.mark.spark
def test_harness_on_sqlite(spark: SparkSession, tmp_path: Path) -> None:
    result = run_benchmark(_small(f"sqlite:///{tmp_path / 'bench.db'}", tmp_path), spark=spark)
    _check(result, with_bulk=False)
    assert not (tmp_path / "bench.db").exists()


@pytest.mark.spark
@pytest.mark.mariadb
def test_harness_on_mariadb(spark: SparkSession, tmp_path: Path) -> None:
    """On the server of TAGSYS_TEST_MYSQL_URL; the harness drops its database itself, and
    the test drops it too when the harness failed half-way."""
    import sqlalchemy as sa

    name = f"tagsys_bench_test_{uuid.uuid4().hex[:8]}"
    server = sa.create_engine(MYSQL_SERVER_URL)
    try:
        config = _small(f"{MYSQL_SERVER_URL}/{name}", tmp_path, journal_runs=True)
        result = run_benchmark(config, spark=spark)
        _check(result, with_bulk=True)
        assert result["checks"]["rollback_restores_the_change_run"]
        assert {"changed_run_journal_off", "rollback_changed_run"} <= set(result["phases"])
        with server.connect() as conn:
            found = conn.execute(sa.text("SHOW DATABASES LIKE :n"), {"n": name}).all()
        assert found == [], "the harness must drop its database"
    finally:
        with server.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()
