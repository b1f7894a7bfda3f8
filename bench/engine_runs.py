"""Running the product's engine: task-all runs through TagSystemAPI, and its pure compute."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from tagsys.api import TagSystemAPI
    from tagsys.engine.summary import RunSummary


@dataclass
class RunResult:
    """One task-all run: wall seconds, the engine's own phases, and what it wrote."""

    wall: float
    phases: dict[str, float]
    inserted: int
    updated: int
    unchanged: int
    failed: list[str] = field(default_factory=list)
    run_id: str = ""

    @property
    def written(self) -> int:
        return self.inserted + self.updated

    def rows(self) -> dict[str, int]:
        return {"inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged}


def make_api(
    spark: SparkSession, db_url: str, lake: Path, work: Path, **overrides: Any
) -> TagSystemAPI:
    from tagsys.api import TagSystemAPI
    from tagsys.settings import load_settings

    settings = load_settings("local", db_url=db_url, lake_uri=str(lake), data_dir=work, **overrides)
    return TagSystemAPI(settings=settings, spark=spark)


def task_all(api: TagSystemAPI, as_of: date, dry_run: bool = False) -> RunResult:
    start = time.perf_counter()
    summary: RunSummary = api.run(api.request("task-all", as_of=as_of, dry_run=dry_run))
    wall = time.perf_counter() - start
    failed = [f"{t.tag_id}: {t.message}" for t in summary.failed_tags]
    return RunResult(
        wall,
        dict(summary.phases),
        summary.rows_inserted,
        summary.rows_updated,
        summary.rows_unchanged,
        failed,
        summary.run_id,
    )


def computed_frame(api: TagSystemAPI, as_of: date) -> DataFrame:
    """The engine's per-user tag arrays (user_id, computed), built as `execute` builds them,
    without the merge with existing rows: what the Spark SQL and DuckDB baselines compute."""
    from tagsys.engine import frames
    from tagsys.engine.plan import plan_run
    from tagsys.engine.run import load_definitions
    from tagsys.lake.reader import read_snapshot

    request = api.request("task-all", as_of=as_of, dry_run=True)
    catalog = api.catalog
    plan = plan_run(request, load_definitions(api.db_url), catalog.schema(), api.registry)
    if plan.faults or plan.own_job_tags:
        raise RuntimeError(f"benchmark tags must all compute in one pass: {plan.faults}")
    needed = plan.columns_by_table()
    inputs = [
        frames.TableInput(
            table,
            read_snapshot(
                api.spark, catalog.snapshot_for(table, as_of), sorted(needed.get(table, ()))
            ),
        )
        for table in sorted(catalog.tables)
    ]
    return frames.user_frame(api.spark, inputs, None).select(
        frames.USER, frames.tag_array(plan.one_pass_tags).alias(frames.COMPUTED)
    )


def summary_of(results: list[RunResult]) -> dict[str, Any]:
    """Median wall and phases over repeats, and the rows of the first repeat."""
    from statistics import median

    phases = {k: round(median(r.phases.get(k, 0.0) for r in results), 3) for k in results[0].phases}
    return {"wall": round(median(r.wall for r in results), 3), "phases": phases}


def codegen_stats(spark: SparkSession) -> dict[str, Any]:
    """Largest generated method and class so far in this JVM (Spark's CodegenMetrics).

    A method above `spark.sql.codegen.hugeMethodLimit` makes Spark give up whole-stage codegen;
    above the JVM's 8000 bytes (HotSpot's HugeMethodLimit) a method is never JIT-compiled.
    """
    try:
        metrics = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics  # type: ignore[union-attr]
        method = metrics.METRIC_GENERATED_METHOD_BYTECODE_SIZE().getSnapshot()
        klass = metrics.METRIC_GENERATED_CLASS_BYTECODE_SIZE().getSnapshot()
        return {
            "max_method_bytecode": int(method.getMax()),
            "max_class_bytecode": int(klass.getMax()),
            "methods_compiled": int(metrics.METRIC_GENERATED_METHOD_BYTECODE_SIZE().getCount()),
            "huge_method_limit": spark.conf.get("spark.sql.codegen.hugeMethodLimit"),
        }
    except Exception as exc:  # metrics are a developer API: report, never fail the benchmark
        return {"error": str(exc)}


def cli_task_all(
    db_url: str, lake: Path, as_of: date, work: Path, spark_conf: dict[str, str]
) -> RunResult:
    """`tagsys --mode task-all` in a fresh process: the real end-to-end time, cold JVM included."""
    import json
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "TAGSYS_SPARK_CONF": json.dumps(spark_conf),
        "TAGSYS_DATA_DIR": str(work),
    }
    command = [sys.executable, "-m", "tagsys.cli", "--mode", "task-all", "--json"]
    command += ["--as-of", as_of.isoformat(), "--db-url", db_url, "--lake-uri", str(lake)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    summary = _summary_json(done.stdout)
    if done.returncode != 0 or summary is None:
        raise RuntimeError(f"tagsys task-all failed ({done.returncode}): {done.stderr[-2000:]}")
    return RunResult(
        wall,
        dict(summary.get("phases", {})),
        int(summary["rows_inserted"]),
        int(summary["rows_updated"]),
        int(summary["rows_unchanged"]),
        [str(t["tag_id"]) for t in summary.get("tags", []) if t.get("status") == "failed"],
    )


def _summary_json(stdout: str) -> dict[str, Any] | None:
    import json

    start = stdout.find("{")
    if start < 0:
        return None
    try:
        value = json.loads(stdout[start:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
