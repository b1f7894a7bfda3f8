"""Profile the engine's compute against the Spark SQL baseline, stage by stage.

    python bench/stage_profile.py --users 1000000 --tags 50 [--conf spark.sql.codegen.hugeMethodLimit=65535]

Runs each frame into the `noop` sink under Spark's event log (the UI is off) and prints, per
job and stage, wall time, summed executor run/CPU time, shuffle bytes, and the largest
generated method. Uses a throw-away SQLite store; the lake comes from the benchmark's cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: no shadowing

from bench import baselines, store
from bench.engine_runs import codegen_stats, computed_frame, make_api
from bench.lake import CACHE, ensure_lake
from bench.rulegen import bench_tags

AS_OF = date(2025, 6, 30)


def stage_summary(log_dir: Path) -> list[dict[str, Any]]:
    """Completed stages from the event log: name, start (seconds after the application's),
    wall, task run/CPU seconds, shuffle MB."""
    stages = []
    app_start = None
    for path in sorted(p for p in log_dir.rglob("*") if p.is_file()):
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:  # a compressed or partial event-log file
                continue
            if not isinstance(event, dict):
                continue
            if event.get("Event") == "SparkListenerApplicationStart":
                app_start = event.get("Timestamp")
            if event.get("Event") != "SparkListenerStageCompleted":
                continue
            info = event["Stage Info"]
            accumulated = {a["Name"]: a.get("Value") for a in info.get("Accumulables", [])}
            stages.append(
                {
                    "stage": info["Stage ID"],
                    "name": info["Stage Name"][:60],
                    "tasks": info["Number of Tasks"],
                    "at_s": round((info["Submission Time"] - (app_start or 0)) / 1000, 2),
                    "wall_s": round((info["Completion Time"] - info["Submission Time"]) / 1000, 2),
                    "run_s": round(
                        _number(accumulated, "internal.metrics.executorRunTime") / 1000, 2
                    ),
                    "cpu_s": round(
                        _number(accumulated, "internal.metrics.executorCpuTime") / 1e9, 2
                    ),
                    "shuffle_write_mb": round(
                        _number(accumulated, "internal.metrics.shuffle.write.bytesWritten") / 2**20,
                        1,
                    ),
                    "gc_s": round(_number(accumulated, "internal.metrics.jvmGCTime") / 1000, 2),
                }
            )
    return sorted(stages, key=lambda s: s["stage"])


def _number(values: dict[str, Any], key: str) -> float:
    try:
        return float(values.get(key) or 0)
    except (TypeError, ValueError):
        return 0.0


def profile(name: str, action: Callable[[], None], spark: Any) -> dict[str, Any]:
    spark.sparkContext.setJobGroup(name, name)
    start = time.perf_counter()
    action()
    return {"name": name, "wall_s": round(time.perf_counter() - start, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--tags", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    from tagsys.spark import create_session

    lake, _ = ensure_lake(args.users, 42, AS_OF)
    tags = bench_tags(args.tags, 7, AS_OF)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="profile-") as work_dir:
        work = Path(work_dir)
        events = work / "events"
        events.mkdir()
        conf = {
            "spark.ui.enabled": "false",
            "spark.driver.memory": args.driver_memory,
            "spark.eventLog.enabled": "true",
            "spark.eventLog.compress": "false",
            "spark.eventLog.dir": str(events),
            **dict(item.split("=", 1) for item in args.conf),
        }
        spark = create_session("local[*]", "tagsys-profile", conf)
        db = f"sqlite:///{work / 'store.db'}"
        store.recreate(db)
        store.load_tags(db, tags)
        api = make_api(spark, db, lake, work)
        frames = {
            "engine_compute": computed_frame(api, AS_OF),
            "spark_sql": baselines.spark_sql_frame(spark, lake, tags, AS_OF),
        }
        runs = []
        for _ in range(args.repeat):
            for name, frame in frames.items():
                runs.append(profile(name, lambda f=frame: baselines.noop(f), spark))
        codegen = codegen_stats(spark)
        print(json.dumps({"runs": runs, "codegen": codegen}), flush=True)
        spark.stop()
        stages = stage_summary(events)
    print(json.dumps({"runs": runs, "codegen": codegen, "conf": args.conf}, indent=1))
    for stage in stages:
        print("  ".join(f"{k}={v}" for k, v in stage.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
