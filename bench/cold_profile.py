"""Cold CLI runs under Spark's event log: where a new process's task-all spends its time.

    python bench/cold_profile.py --users 1000000 --tags 50 --db mysql+pymysql://root@127.0.0.1:3306/tagsys_bench_cold [--pairs 2] [--conf k=v] [--keep-db]

Each pair empties `user_tags`, then runs `tagsys --mode task-all` twice in new processes (a
first run, then an unchanged re-run), with the CLI's own defaults (1 GB driver heap). Prints
per run the wall time, the machine's load average, the run's phases and rows, and its stages
(wall, executor run/CPU/GC seconds) from the event log. The lake and tags are the benchmark's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: no shadowing

from bench import store
from bench.lake import ensure_lake
from bench.rulegen import bench_tags
from bench.stage_profile import stage_summary

AS_OF = date(2025, 6, 30)


def cold_run(label: str, db: str, lake: Path, work: Path, conf: dict[str, str]) -> None:
    logs = work / f"events-{label}"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    spark_conf = {
        "spark.ui.enabled": "false",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"file://{logs}",
        "spark.eventLog.compress": "false",
        **conf,
    }
    env = {**os.environ, "TAGSYS_SPARK_CONF": json.dumps(spark_conf), "TAGSYS_DATA_DIR": str(work)}
    command = [sys.executable, "-m", "tagsys.cli", "--mode", "task-all", "--json"]
    command += ["--as-of", AS_OF.isoformat(), "--db-url", db, "--lake-uri", str(lake)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{label} failed: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout[done.stdout.find("{") :])
    rows = [summary[f"rows_{k}"] for k in ("inserted", "updated", "unchanged")]
    print(
        f"{label}: {wall:.1f} s, load {load:.1f} -> {os.getloadavg()[0]:.1f}, "
        f"phases {summary['phases']}, rows inserted/updated/unchanged {rows}"
    )
    for stage in stage_summary(logs):
        print(f"    {stage}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--tags", type=int, required=True)
    parser.add_argument("--db", required=True, help="MySQL URL (the database is recreated)")
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep-db", action="store_true", help="leave the database for study")
    args = parser.parse_args(argv)
    conf = dict(item.split("=", 1) for item in args.conf)
    lake, _ = ensure_lake(args.users, 42, AS_OF)
    store.recreate(args.db)
    store.load_tags(args.db, bench_tags(args.tags, 7, AS_OF))
    work = Path(tempfile.mkdtemp(prefix="tagsys-cold-"))
    try:
        for index in range(args.pairs):
            store.empty_table(args.db, "user_tags")
            cold_run(f"first{index}", args.db, lake, work, conf)
            cold_run(f"unchanged{index}", args.db, lake, work, conf)
    finally:
        if not args.keep_db:
            store.drop(args.db)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
