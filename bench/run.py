"""Benchmark harness (issue 5): the engine's phases against Spark SQL, DuckDB, the seed's naive
job and MySQL's bulk load, on one generated lake; exits non-zero when any tag sets differ.

    python bench/run.py --users 200000 --tags 50 \
        --db mysql+pymysql://root@127.0.0.1:3306/tagsys_bench --json out.json

`run_benchmark(BenchConfig(...), spark=None)` is the importable entry point (tests pass their
SparkSession). See bench/README.md for what each number measures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: no shadowing

from bench import baselines, report, store
from bench.engine_runs import (
    RunResult,
    cli_task_all,
    codegen_stats,
    computed_frame,
    make_api,
    summary_of,
    task_all,
)
from bench.journal_runs import journal_steps
from bench.lake import CACHE, ensure_lake
from bench.rulegen import (
    BASE_THRESHOLD,
    CHANGED_TAG,
    CHANGED_THRESHOLD,
    BenchTag,
    bench_tags,
    changed_rule,
)
from bench.writers import bulk_load, executemany_upsert, write_tsv

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tagsys.api import TagSystemAPI

ALL_BASELINES = ("naive", "spark_sql", "duckdb", "bulk_load")
AS_OF = date(2025, 6, 30)


@dataclass
class BenchConfig:
    users: int
    tags: int
    db_url: str
    repeat: int = 3
    runs: int | None = None
    """Repeats of each engine task-all run (default: `repeat`); these are the expensive ones."""
    baselines: tuple[str, ...] = ALL_BASELINES
    json_out: Path | None = None
    seed: int = 42
    rule_seed: int = 7
    as_of: date = AS_OF
    cache: Path = CACHE
    keep_db: bool = False
    master: str = "local[*]"
    driver_memory: str = "4g"
    spark_conf: dict[str, str] = field(default_factory=dict)
    duckdb_threads: int | None = None
    cold_runs: bool = True
    """Time `tagsys --mode task-all` in fresh processes (first, then unchanged): end to end."""
    service: bool = False
    """Time jobs through `tagsys serve` instead of the engine steps and baselines."""
    journal_runs: bool = True
    """Time the change and unchanged runs with the journal off too, and a rollback."""


@dataclass
class Bench:
    """State shared by the steps of one benchmark."""

    config: BenchConfig
    spark: SparkSession
    lake: Path
    work: Path
    tags: list[BenchTag]
    result: dict[str, Any]
    checksums: dict[str, store.Checksum] = field(default_factory=dict)

    @property
    def phases(self) -> dict[str, Any]:
        return self.result["phases"]

    @property
    def runs(self) -> int:
        return self.config.runs or self.config.repeat

    def save(self) -> None:
        """Write what is measured so far (a long run that is stopped keeps its numbers)."""
        if self.config.json_out:
            self.config.json_out.write_text(json.dumps(self.result, indent=2, ensure_ascii=False))

    def note(self, text: str) -> None:
        self.result["notes"].append(text)
        print(f"  · {text}", flush=True)


def start_spark(config: BenchConfig) -> SparkSession:
    from tagsys.spark import create_session

    conf = {
        "spark.driver.memory": config.driver_memory,
        "spark.ui.enabled": "false",
        **config.spark_conf,
    }
    return create_session(config.master, "tagsys-bench", conf)


def run_benchmark(config: BenchConfig, spark: SparkSession | None = None) -> dict[str, Any]:
    """Run everything; the returned dict is the JSON report (`checks.ok` False on a mismatch)."""
    result = report.empty_result(config)
    lake, generated = ensure_lake(config.users, config.seed, config.as_of, config.cache)
    result["lake"] = {"path": str(lake), "generated_now": generated}
    own_spark = spark is None
    if spark is None:
        start = time.perf_counter()
        spark = start_spark(config)
        result["phases"]["spark_start"] = round(time.perf_counter() - start, 3)
    config.cache.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=config.cache, prefix="work-") as work:
            tags = bench_tags(config.tags, config.rule_seed, config.as_of)
            bench = Bench(config, spark, lake, Path(work), tags, result)
            _run_steps(bench)
    finally:
        if not config.keep_db:
            store.drop(config.db_url)
        if own_spark:
            spark.stop()
    report.finish(result)
    return result


def _run_steps(bench: Bench) -> None:
    config = bench.config
    warm = baselines.timed(
        lambda: bench.spark.read.parquet(str(bench.lake / "user_basic_info")).limit(1).collect()
    )
    bench.phases["first_action"] = round(warm, 3)
    store.recreate(config.db_url)
    bench.result["machine"] = report.machine(bench.spark, config.db_url)
    store.load_tags(config.db_url, bench.tags)
    store.create_side_tables(config.db_url)
    api = make_api(bench.spark, config.db_url, bench.lake, bench.work)
    _engine_steps(bench, api)
    _baseline_steps(bench)
    _compare(bench)


# --- the engine -----------------------------------------------------------------------------


def _engine_steps(bench: Bench, api: TagSystemAPI) -> None:
    config = bench.config
    if config.cold_runs:
        _cold_runs(bench)
    print(f"engine: first run ({config.users} users, {config.tags} tags)", flush=True)
    first = _repeat_first_run(bench, api)
    bench.checksums["engine_store"] = store.table_checksum(config.db_url)
    print("engine: unchanged re-run", flush=True)
    unchanged = [_logged(bench, task_all(api, config.as_of)) for _ in range(bench.runs)]
    print("engine: compute only (noop sink)", flush=True)
    _pure_compute(bench, api)
    print("engine: 10% re-run", flush=True)
    changed = _changed_runs(bench, api)
    _record_runs(bench, first, unchanged, changed)
    if config.journal_runs:
        journal_steps(bench, api, lambda run: _logged(bench, run))


def _cold_conf(config: BenchConfig) -> dict[str, str]:
    """Spark settings of the runs in fresh processes (the engine's and the naive job's)."""
    conf = {"spark.driver.memory": config.driver_memory, "spark.ui.enabled": "false"}
    conf |= config.spark_conf
    if config.master != "local[*]":
        conf["spark.master"] = config.master
    return conf


def _cold_runs(bench: Bench) -> None:
    """End to end as a user runs it: a fresh `tagsys` process each, Spark start included."""
    config = bench.config
    conf = _cold_conf(config)
    print("engine: cold first run (tagsys --mode task-all in a new process)", flush=True)
    first = _logged(bench, cli_task_all(config.db_url, bench.lake, config.as_of, bench.work, conf))
    print("engine: cold unchanged re-run (new process)", flush=True)
    again = _logged(bench, cli_task_all(config.db_url, bench.lake, config.as_of, bench.work, conf))
    bench.phases["cold_first_run"] = round(first.wall, 3)
    bench.phases["cold_unchanged_run"] = round(again.wall, 3)
    for phase, seconds in first.phases.items():
        bench.phases[f"cold_first_run.{phase}"] = seconds
    for phase, seconds in again.phases.items():
        bench.phases[f"cold_unchanged_run.{phase}"] = seconds
    bench.result["rows_written"]["cold_first_run"] = [first.rows()]
    bench.result["rows_written"]["cold_unchanged_run"] = [again.rows()]
    store.empty_table(config.db_url, "user_tags")


def _repeat_first_run(bench: Bench, api: TagSystemAPI) -> list[RunResult]:
    runs = []
    for index in range(bench.runs):
        if index:
            store.empty_table(bench.config.db_url, "user_tags")
        runs.append(_logged(bench, task_all(api, bench.config.as_of)))
        if runs[-1].failed:
            raise RuntimeError(f"tags failed in the engine: {runs[-1].failed}")
    return runs


def _logged(bench: Bench, run: RunResult) -> RunResult:
    phases = "  ".join(f"{k} {v:.1f}s" for k, v in run.phases.items())
    print(f"  {run.wall:.1f}s ({phases}); rows {run.rows()}", flush=True)
    bench.result.setdefault("run_log", []).append({"wall": round(run.wall, 3), **run.phases})
    bench.save()
    return run


def _pure_compute(bench: Bench, api: TagSystemAPI) -> None:
    from tagsys.spark import RUN_CONF, run_conf

    frame = computed_frame(api, bench.config.as_of)
    with run_conf(bench.spark, RUN_CONF):  # as a run computes it
        times = [baselines.timed(lambda: baselines.noop(frame)) for _ in range(bench.config.repeat)]
        bench.checksums["engine_computed"] = baselines.spark_checksum(frame, tags="computed")
    bench.phases["compute"] = round(median(times), 3)
    bench.phases["compute_runs"] = [round(t, 3) for t in times]
    print(f"  compute: {[round(t, 2) for t in times]}", flush=True)
    bench.result["codegen"] = codegen_stats(bench.spark)


def _changed_runs(bench: Bench, api: TagSystemAPI) -> list[RunResult]:
    config = bench.config
    expected = _expected_changes(bench)
    bench.result["rows_written"]["changed_expected"] = expected
    runs = []
    for index in range(bench.runs):
        threshold = CHANGED_THRESHOLD if index % 2 == 0 else BASE_THRESHOLD
        store.set_rules(config.db_url, CHANGED_TAG, changed_rule(threshold))
        runs.append(_logged(bench, task_all(api, config.as_of)))
    store.set_rules(config.db_url, CHANGED_TAG, changed_rule(BASE_THRESHOLD))
    return runs


def _expected_changes(bench: Bench) -> int:
    """Users whose tag CHANGED_TAG flips between the two thresholds (DuckDB, same lake)."""
    from bench import sqlgen

    old = sqlgen.tag_condition(changed_rule(BASE_THRESHOLD), bench.config.as_of, "duckdb")
    new = sqlgen.tag_condition(changed_rule(CHANGED_THRESHOLD), bench.config.as_of, "duckdb")
    conn = baselines.duckdb_connection(bench.config.duckdb_threads)
    try:
        sql = f"SELECT count(*) FROM {baselines.duckdb_from(bench.lake)} WHERE ({old}) <> ({new})"
        row = conn.execute(sql).fetchall()[0]
    finally:
        conn.close()
    return int(row[0]) if row else 0


def _record_runs(
    bench: Bench, first: list[RunResult], unchanged: list[RunResult], changed: list[RunResult]
) -> None:
    for name, runs in (
        ("first_run", first),
        ("unchanged_run", unchanged),
        ("changed_run", changed),
    ):
        summary = summary_of(runs)
        bench.phases[name] = summary["wall"]
        for phase, seconds in summary["phases"].items():
            bench.phases[f"{name}.{phase}"] = seconds
        bench.phases[f"{name}_runs"] = [round(r.wall, 3) for r in runs]
        bench.result["rows_written"][name] = [r.rows() for r in runs]
    if "cold_first_run" in bench.phases:
        bench.phases["end_to_end_first"] = bench.phases["cold_first_run"]
        bench.phases["end_to_end_unchanged"] = bench.phases["cold_unchanged_run"]
        return
    start = bench.phases.get("spark_start", 0.0) + bench.phases["first_action"]
    bench.phases["end_to_end_first"] = round(start + first[0].wall, 3)
    bench.phases["end_to_end_unchanged"] = round(start + bench.phases["unchanged_run"], 3)


# --- baselines ------------------------------------------------------------------------------


def _baseline_steps(bench: Bench) -> None:
    chosen = bench.config.baselines
    if "spark_sql" in chosen:
        _spark_sql(bench)
    if "duckdb" in chosen or "bulk_load" in chosen:
        _duckdb(bench, timed="duckdb" in chosen)
    if "naive" in chosen:
        _naive(bench)
    if "bulk_load" in chosen:
        if store.is_mysql(bench.config.db_url):
            _bulk_load(bench)
        else:
            bench.note("bulk_load skipped: the store is not MySQL/MariaDB")


def _spark_sql(bench: Bench) -> None:
    print("baseline: spark_sql", flush=True)
    config = bench.config
    frame = baselines.spark_sql_frame(bench.spark, bench.lake, bench.tags, config.as_of)
    times = [baselines.timed(lambda: baselines.noop(frame)) for _ in range(config.repeat)]
    _record_baseline(bench, "spark_sql", times)
    bench.checksums["spark_sql"] = baselines.spark_checksum(frame)


def _duckdb(bench: Bench, timed: bool) -> None:
    print("baseline: duckdb", flush=True)
    config = bench.config
    sql = baselines.duckdb_sql_text(bench.lake, bench.tags, config.as_of)
    conn = baselines.duckdb_connection(config.duckdb_threads)
    try:
        if timed:
            times = [
                baselines.timed(lambda: baselines.duckdb_sink(conn, sql))
                for _ in range(config.repeat)
            ]
            _record_baseline(bench, "duckdb", times)
        bench.checksums["duckdb"] = baselines.duckdb_checksum(conn, sql)
        if "bulk_load" in config.baselines and store.is_mysql(config.db_url):
            _prepare_bulk_file(bench, conn, sql)
    finally:
        conn.close()


def _naive(bench: Bench) -> None:
    print("baseline: naive (one query per tag, collect_set, executemany upsert)", flush=True)
    if bench.config.cold_runs:  # timed as the engine's end to end is: a fresh process
        _naive_cold(bench)
    else:
        _naive_in_process(bench)
    bench.checksums["naive"] = store.table_checksum(bench.config.db_url, store.NAIVE_TABLE)


def _naive_cold(bench: Bench) -> None:
    import subprocess

    config = bench.config
    command = [sys.executable, str(Path(__file__).with_name("naive_job.py"))]
    command += ["--lake", str(bench.lake), "--db", config.db_url, "--tags", str(config.tags)]
    command += ["--rule-seed", str(config.rule_seed), "--as-of", config.as_of.isoformat()]
    command += ["--conf", json.dumps(_cold_conf(config))]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the naive job failed ({done.returncode}): {done.stderr[-2000:]}")
    reported = json.loads(done.stdout.strip().splitlines()[-1])
    _record_baseline(bench, "naive", [reported["job"]])
    bench.result["baselines"]["naive_end_to_end"] = round(wall, 3)
    print(f"  naive end to end (new process): {wall:.1f}s", flush=True)


def _naive_in_process(bench: Bench) -> None:
    config = bench.config
    definitions = store.definitions_of(bench.tags)
    frame = baselines.naive_frame(bench.spark, bench.lake, bench.tags, config.as_of)

    def run() -> None:
        rows = store.final_rows(baselines.naive_rows(frame), definitions)
        executemany_upsert(config.db_url, store.NAIVE_TABLE, rows)

    _record_baseline(bench, "naive", [baselines.timed(run)])
    start = bench.phases.get("spark_start", 0.0) + bench.phases["first_action"]
    bench.result["baselines"]["naive_end_to_end"] = round(
        start + bench.result["baselines"]["naive"], 3
    )


def _prepare_bulk_file(bench: Bench, conn: Any, sql: str) -> None:
    definitions = store.definitions_of(bench.tags)
    path = bench.work / "user_tags.tsv"
    start = time.perf_counter()
    rows = store.final_rows(baselines.duckdb_rows(conn, sql, order=True), definitions)
    count = write_tsv(path, rows)
    bench.result["baselines"]["bulk_load_prepare_file"] = round(time.perf_counter() - start, 3)
    bench.result["bulk_file"] = {"path": str(path), "rows": count}


def _bulk_load(bench: Bench) -> None:
    print("baseline: bulk_load (LOAD DATA LOCAL INFILE + INSERT ... SELECT ... ODKU)", flush=True)
    path = Path(bench.result["bulk_file"]["path"])
    steps = [bulk_load(bench.config.db_url, path) for _ in range(bench.config.repeat)]
    _record_baseline(bench, "bulk_load", [s["total"] for s in steps])
    bench.result["baselines"]["bulk_load.load"] = round(median(s["load"] for s in steps), 3)
    bench.result["baselines"]["bulk_load.merge"] = round(median(s["merge"] for s in steps), 3)
    bench.checksums["bulk_load"] = store.table_checksum(bench.config.db_url, store.BULK_TABLE)


def _record_baseline(bench: Bench, name: str, times: list[float]) -> None:
    bench.result["baselines"][name] = round(median(times), 3)
    bench.result["baselines"][f"{name}_runs"] = [round(t, 3) for t in times]
    print(f"  {name}: {[round(t, 2) for t in times]}", flush=True)
    bench.save()


# --- equality ---------------------------------------------------------------------------------


def _compare(bench: Bench) -> None:
    reference = bench.checksums["engine_store"]
    checks: dict[str, Any] = {"reference": "engine_store", "ok": True, "sources": {}}
    for name, checksum in bench.checksums.items():
        equal = checksum == reference
        checks["sources"][name] = {**checksum.__dict__, "equal": equal}
        if not equal:
            checks["ok"] = False
            checks["sources"][name]["sample_diff"] = _sample_diff(bench, name)
    first_rows = bench.result["rows_written"]["first_run"][0]
    if first_rows["inserted"] != reference.users:
        checks["ok"] = False
        checks["first_run_rows"] = f"inserted {first_rows['inserted']}, expected {reference.users}"
    bench.result["checks"] = checks
    _check_rewrites(bench, checks)


def _check_rewrites(bench: Bench, checks: dict[str, Any]) -> None:
    written = bench.result["rows_written"]
    unchanged = [r["inserted"] + r["updated"] for r in written["unchanged_run"]]
    changed = [r["inserted"] + r["updated"] for r in written["changed_run"]]
    expected = written["changed_expected"]
    checks["unchanged_writes_zero"] = all(n == 0 for n in unchanged)
    checks["changed_writes_only_changed"] = all(n == expected for n in changed)
    if not (checks["unchanged_writes_zero"] and checks["changed_writes_only_changed"]):
        checks["ok"] = False
    if "rollback_check" in bench.result:  # the rollback restored exactly the change run's rows
        checks["rollback_restores_the_change_run"] = bench.result.pop("rollback_check")
        checks["ok"] = checks["ok"] and checks["rollback_restores_the_change_run"]


def _sample_diff(bench: Bench, name: str, limit: int = 5) -> list[dict[str, Any]]:
    engine = dict(store.read_tag_sets(bench.config.db_url))
    other = dict(_rows_of(bench, name))
    users = sorted(u for u in set(engine) | set(other) if engine.get(u, []) != other.get(u, []))
    return [
        {"user_id": u, "engine": engine.get(u, []), name: other.get(u, [])} for u in users[:limit]
    ]


def _rows_of(bench: Bench, name: str) -> Any:
    config = bench.config
    if name == "naive":
        return store.read_tag_sets(config.db_url, store.NAIVE_TABLE)
    if name == "bulk_load":
        return store.read_tag_sets(config.db_url, store.BULK_TABLE)
    if name == "engine_computed":
        api = make_api(bench.spark, config.db_url, bench.lake, bench.work)
        return baselines.spark_rows(computed_frame(api, config.as_of), tags="computed")
    if name == "spark_sql":
        frame = baselines.spark_sql_frame(bench.spark, bench.lake, bench.tags, config.as_of)
        return baselines.spark_rows(frame)
    conn = baselines.duckdb_connection(config.duckdb_threads)
    return baselines.duckdb_rows(
        conn, baselines.duckdb_sql_text(bench.lake, bench.tags, config.as_of)
    )


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--tags", type=int, required=True)
    parser.add_argument("--db", required=True, help="store URL (database/file is recreated)")
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--repeat", type=int, default=3, help="repeats of each cheap phase")
    parser.add_argument("--baselines", default=",".join(ALL_BASELINES))
    parser.add_argument("--runs", type=int, help="repeats of each engine run (default: --repeat)")
    parser.add_argument("--seed", type=int, default=42, help="lake generator seed")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--duckdb-threads", type=int)
    parser.add_argument("--no-cold-runs", action="store_true", help="skip fresh-process runs")
    parser.add_argument(
        "--service",
        action="store_true",
        help="time jobs through the REST service instead (bench/service.py)",
    )
    parser.add_argument(
        "--no-journal-runs", action="store_true", help="skip the journal-off runs and rollback"
    )
    args = parser.parse_args(argv)
    chosen = tuple(b for b in args.baselines.split(",") if b)
    unknown = sorted(set(chosen) - set(ALL_BASELINES))
    if unknown:
        parser.error(f"unknown baselines {unknown}; choose from {','.join(ALL_BASELINES)}")
    return BenchConfig(
        users=args.users,
        tags=args.tags,
        db_url=args.db,
        repeat=max(1, args.repeat),
        runs=args.runs,
        baselines=chosen,
        json_out=args.json,
        seed=args.seed,
        keep_db=args.keep_db,
        master=args.master,
        driver_memory=args.driver_memory,
        spark_conf=dict(item.split("=", 1) for item in args.conf),
        duckdb_threads=args.duckdb_threads,
        cold_runs=not args.no_cold_runs,
        service=args.service,
        journal_runs=not args.no_journal_runs,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if config.service:
        return _service_main(config)
    result = run_benchmark(config)
    print(report.render(result))
    if config.json_out:
        config.json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0 if result["checks"]["ok"] else 1


def _service_main(config: BenchConfig) -> int:
    from bench import service

    config.cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=config.cache, prefix="work-") as work:
        conf = {"spark.driver.memory": config.driver_memory, "spark.ui.enabled": "false"}
        result = service.run_service_benchmark(
            config.users,
            config.tags,
            config.db_url,
            Path(work),
            config.seed,
            config.as_of,
            conf | config.spark_conf,
        )
    print(service.render(result))
    if config.json_out:
        config.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
