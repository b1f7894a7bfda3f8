"""The benchmark's JSON report: machine, ratios against baselines, targets, and a text table."""

from __future__ import annotations

import os
import platform
import sys
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from bench.run import BenchConfig


def empty_result(config: BenchConfig) -> dict[str, Any]:
    return {
        "users": config.users,
        "tags": config.tags,
        "db": sa.make_url(config.db_url).render_as_string(hide_password=True),
        "as_of": config.as_of.isoformat(),
        "repeat": config.repeat,
        "machine": {},
        "phases": {},
        "rows_written": {},
        "baselines": {},
        "ratios": {},
        "targets": {},
        "checks": {"ok": False},
        "notes": [],
    }


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


def machine(spark: SparkSession, db_url: str) -> dict[str, Any]:
    import duckdb
    import pyspark

    from bench.writers import server_version
    from tagsys.spark import java_version

    conf = spark.sparkContext.getConf()
    return {
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "pyspark": pyspark.__version__,
        "duckdb": duckdb.__version__,
        "java": java_version(),
        "database": server_version(db_url),
        "spark_master": spark.sparkContext.master,
        "spark_driver_memory": conf.get("spark.driver.memory", "default"),
        "codegen_huge_method_limit": spark.conf.get("spark.sql.codegen.hugeMethodLimit"),
        "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
    }


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return round(ours / theirs, 3)


def finish(result: dict[str, Any]) -> None:
    phases, base = result["phases"], result["baselines"]
    result["ratios"] = {
        "compute_vs_spark_sql": _ratio(phases.get("compute"), base.get("spark_sql")),
        "compute_vs_duckdb": _ratio(phases.get("compute"), base.get("duckdb")),
        "write_vs_bulk_load": _ratio(phases.get("first_run.write"), base.get("bulk_load")),
        "end_to_end_vs_naive": _ratio(phases.get("end_to_end_first"), base.get("naive_end_to_end")),
        "first_run_journal_on_vs_off": _ratio(
            phases.get("first_run"), phases.get("first_run_journal_off")
        ),
        "changed_journal_on_vs_off": _ratio(
            phases.get("changed_run_journal_on"), phases.get("changed_run_journal_off")
        ),
        "unchanged_journal_on_vs_off": _ratio(
            phases.get("unchanged_run"), phases.get("unchanged_run_journal_off")
        ),
    }
    result["targets"] = _targets(result)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]


def _targets(result: dict[str, Any]) -> dict[str, bool | None]:
    ratios, phases, checks = result["ratios"], result["phases"], result["checks"]

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    spark_started = "spark_start" in phases
    return {
        "compute_within_1.3x_spark_sql": at_most(ratios["compute_vs_spark_sql"], 1.3),
        "compute_within_3x_duckdb": at_most(ratios["compute_vs_duckdb"], 3.0),
        "write_within_1.5x_bulk_load": at_most(ratios["write_vs_bulk_load"], 1.5),
        "unchanged_writes_zero": checks.get("unchanged_writes_zero"),
        "changed_writes_only_changed": checks.get("changed_writes_only_changed"),
        "end_to_end_first_under_60s": at_most(phases.get("end_to_end_first"), 60)
        if spark_started
        else None,
        "end_to_end_unchanged_under_40s": at_most(phases.get("end_to_end_unchanged"), 40)
        if spark_started
        else None,
        "3x_faster_than_naive": at_most(ratios["end_to_end_vs_naive"], 1 / 3),
        "changed_journal_within_1.25x": at_most(ratios["changed_journal_on_vs_off"], 1.25),
        "rollback_changed_run_under_30s": at_most(phases.get("rollback_changed_run"), 30),
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:10.3f}"
    if isinstance(value, list):
        return "  ".join(_fmt_item(v) for v in value)
    return f"{value!s:>10}"


def _fmt_item(value: Any) -> str:
    if isinstance(value, dict):
        return "/".join(str(v) for v in value.values())
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def render(result: dict[str, Any]) -> str:
    lines = [f"tagsys benchmark: {result['users']} users, {result['tags']} tags, {result['db']}"]
    machine_info = result["machine"]
    lines.append(
        f"machine: {machine_info.get('cores')} cores, {machine_info.get('memory_gb')} GB, "
        f"Spark {machine_info.get('pyspark')}, DuckDB {machine_info.get('duckdb')}, "
        f"{machine_info.get('database')}"
    )
    for title in ("phases", "baselines", "ratios", "targets"):
        lines.append(f"\n{title} (seconds)" if title in ("phases", "baselines") else f"\n{title}")
        for key, value in result[title].items():
            lines.append(f"  {key:<34} {_fmt(value)}")
    lines.append("\nrows written (inserted/updated/unchanged per repeat)")
    for key, value in result["rows_written"].items():
        lines.append(f"  {key:<34} {_fmt(value)}")
    checks = result["checks"]
    lines.append(f"\nequality checks: {'OK' if checks.get('ok') else 'FAILED'}")
    for name, source in checks.get("sources", {}).items():
        mark = "=" if source["equal"] else "≠"
        lines.append(f"  {mark} {name:<16} users {source['users']} tags {source['tags']}")
        lines.extend(f"      {row}" for row in source.get("sample_diff", []))
    lines.extend(f"note: {n}" for n in result["notes"])
    return "\n".join(lines)
