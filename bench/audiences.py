"""What audiences cost and how fast they answer (issue 16), on the benchmark's lake and rules:

- building the index from user_tags (`reindex`) after a first run;
- maintenance after a 10% change run (`catch_up`, timed apart from the run, whose own wall
  time is measured with the index off), as a share of the run;
- the count of a 5-operand expression from the warm index, against the obvious
  alternative, the same expression as a JSON_CONTAINS scan of user_tags on MariaDB;
- an export of the largest audience to Parquet.

    python -m bench.audiences --users 1000000 --tags 50 \
        --db 'mysql+pymysql://root@127.0.0.1:3306/tagsys_bench_aud' --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import store
from bench.engine_runs import make_api, task_all
from bench.lake import ensure_lake
from bench.rulegen import BASE_THRESHOLD, CHANGED_TAG, CHANGED_THRESHOLD, bench_tags, changed_rule

AS_OF_DEFAULT = "2025-06-30"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
        "n": len(ordered),
    }


def sql_of(expression: Any) -> str:
    """The expression as a WHERE clause of JSON_CONTAINS calls (ids only)."""
    if isinstance(expression, int):
        return f"JSON_CONTAINS(tag_ids, '{expression}')"
    ((op, value),) = expression.items()
    if op == "not":
        return f"NOT {sql_of(value)}"
    return "(" + f" {op.upper()} ".join(sql_of(v) for v in value) + ")"


def synthetic(users: int, counts: int, work: Path) -> dict[str, Any]:
    """The parts that grow with users, at `users` without a run: a count of the benchmark's
    expression over 50 random bitmaps of the benchmark's densities (10% to 60%), and an
    export of a 1M-member audience through the in-memory id map."""
    import numpy as np
    import pyarrow as pa
    from pyroaring import BitMap

    from tagsys.audiences import export as exporter
    from tagsys.audiences.expression import And, Not, Or, Tag
    from tagsys.audiences.ids import UserIds
    from tagsys.audiences.index import Snapshot

    rng = np.random.default_rng(7)
    bitmaps = {0: BitMap(range(1, users + 1))}
    for tag_id in range(1, 51):
        density = rng.uniform(0.1, 0.6)
        bitmaps[tag_id] = BitMap(np.flatnonzero(rng.random(users) < density).astype(np.uint32) + 1)
    snapshot = Snapshot(1, None, None, True, bitmaps)
    node = And((Tag(1), Or((Tag(2), Tag(5))), Not(Tag(4)), Tag(7)))
    timings = []
    for _ in range(counts):
        start = time.perf_counter()
        len(snapshot.evaluate(node))
        timings.append(time.perf_counter() - start)
    ids = UserIds(None)  # type: ignore[arg-type]
    ids._idx = np.arange(1, users + 1, dtype=np.int64)
    ids._users = pa.chunked_array([pa.array([f"user_{i:09d}" for i in range(1, users + 1)])])
    ids.refresh = lambda: None  # type: ignore[method-assign]
    members = BitMap(rng.choice(users, 1_000_000, replace=False).astype(np.uint32) + 1)
    start = time.perf_counter()
    rows = exporter.write(str(work / "synthetic.parquet"), "parquet", ids.chunks(members, 500_000))
    return {
        "users": users,
        "bitmap_evaluation": percentiles(timings),
        "export_1m_members_s": round(time.perf_counter() - start, 2),
        "export_rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    from datetime import date

    from tagsys.audiences.maintain import catch_up, rebuild
    from tagsys.audiences.query import Audiences
    from tagsys.spark import create_session
    from tagsys.store.db import create_store_engine

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--db", required=True)
    parser.add_argument("--counts", type=int, default=300)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--synthetic-users", type=int, help="only the parts that grow with users, at this size"
    )
    args = parser.parse_args(argv)
    if args.synthetic_users:
        found = synthetic(args.synthetic_users, args.counts, Path(tempfile.mkdtemp()))
        print(json.dumps(found, indent=2))
        return 0
    as_of = date.fromisoformat(AS_OF_DEFAULT)
    lake, _ = ensure_lake(args.users, 42, as_of)
    spark = create_session(
        "local[*]",
        "tagsys-bench-audiences",
        {"spark.driver.memory": "4g", "spark.ui.enabled": "false"},
    )
    work = Path(tempfile.mkdtemp(prefix="tagsys-bench-aud-"))
    result: dict[str, Any] = {"users": args.users, "tags": args.tags, "load": os.getloadavg()}
    store.recreate(args.db)
    tags = bench_tags(args.tags, 7, as_of)
    store.load_tags(args.db, tags)
    off = make_api(spark, args.db, lake, work, audience_index=False)
    engine = create_store_engine(args.db)
    try:
        store.set_rules(args.db, CHANGED_TAG, changed_rule(BASE_THRESHOLD))
        result["first_run_s"] = round(task_all(off, as_of).wall, 2)
        start = time.perf_counter()
        built = rebuild(engine)
        result["reindex_s"] = round(time.perf_counter() - start, 2)
        result["index_users"] = built.users
        changes = []
        for threshold in (CHANGED_THRESHOLD, BASE_THRESHOLD, CHANGED_THRESHOLD, BASE_THRESHOLD):
            store.set_rules(args.db, CHANGED_TAG, changed_rule(threshold))
            run = task_all(off, as_of)
            start = time.perf_counter()
            publication = catch_up(engine)
            maintenance = time.perf_counter() - start
            assert publication is not None and not publication.rebuilt
            changes.append(
                {
                    "run_s": round(run.wall, 2),
                    "rows_written": run.written,
                    "maintenance_s": round(maintenance, 2),
                    "share": round(maintenance / run.wall, 3),
                    "users_reread": publication.users,
                }
            )
            print(changes[-1], flush=True)
        result["changed_runs"] = changes
        result["maintenance_share_median"] = statistics.median(c["share"] for c in changes)
        audiences = Audiences(engine)
        expression = {"and": [1, {"or": [2, 5]}, {"not": 4}, 7]}
        result["expression"] = expression
        result["count"] = audiences.count(expression).count
        timings = []
        for _ in range(args.counts):
            start = time.perf_counter()
            audiences.count(expression)
            timings.append(time.perf_counter() - start)
        result["count_index"] = percentiles(timings)
        if store.is_mysql(args.db):
            sql = sa.text(f"SELECT COUNT(*) FROM user_tags WHERE {sql_of(expression)}")
            scans = []
            with engine.connect() as conn:
                assert conn.execute(sql).scalar() == result["count"], "index and scan disagree"
                for _ in range(5):
                    start = time.perf_counter()
                    conn.execute(sql).scalar()
                    scans.append(time.perf_counter() - start)
            result["count_json_contains"] = percentiles(scans)
        counts = {t.tag_id: audiences.count(t.tag_id).count for t in tags}
        rarest = min(counts, key=lambda t: counts[t])
        largest = {"not": rarest}
        out = work / "largest.parquet"
        start = time.perf_counter()
        exported = audiences.export(largest, str(out))
        result["export"] = {
            "rows": exported.rows,
            "seconds": round(time.perf_counter() - start, 2),
            "bytes": out.stat().st_size,
        }
        csv_out = work / "largest.csv"
        start = time.perf_counter()
        audiences.export(largest, str(csv_out))
        result["export_csv_s"] = round(time.perf_counter() - start, 2)
    finally:
        engine.dispose()
        off.close()
        store.drop(args.db)
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
