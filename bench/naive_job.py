"""The seed's naive job in a process of its own, as a user runs it: Python and Spark start,
cold JVM, the job. Prints {"spark_start": s, "job": s} as JSON.

`bench/run.py` runs it for `baselines.naive_end_to_end` when it times the engine's own runs
the same way (fresh processes, the default); with `--no-cold-runs` both run in its process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import baselines, store
from bench.rulegen import bench_tags
from bench.writers import executemany_upsert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--tags", type=int, required=True)
    parser.add_argument("--rule-seed", type=int, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--conf", default="{}", help="Spark settings as a JSON object")
    args = parser.parse_args(argv)
    from tagsys.spark import create_session

    start = time.perf_counter()
    spark = create_session("local[*]", "tagsys-naive", json.loads(args.conf))
    started = time.perf_counter() - start
    tags = bench_tags(args.tags, args.rule_seed, args.as_of)
    begin = time.perf_counter()
    frame = baselines.naive_frame(spark, args.lake, tags, args.as_of)
    rows = store.final_rows(baselines.naive_rows(frame), store.definitions_of(tags))
    executemany_upsert(args.db, store.NAIVE_TABLE, rows)
    job = time.perf_counter() - begin
    spark.stop()
    print(json.dumps({"spark_start": round(started, 3), "job": round(job, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
