"""What the change journal costs (issue 14): the first run, the 10% change run and the
unchanged re-run with the journal on (the engine's default runs) against the same runs with
it off, and the rollback of a 10% change run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench import store
from bench.engine_runs import RunResult, make_api, summary_of, task_all
from bench.rulegen import BASE_THRESHOLD, CHANGED_TAG, CHANGED_THRESHOLD, changed_rule

if TYPE_CHECKING:
    from bench.run import Bench
    from tagsys.api import TagSystemAPI

Logged = Callable[[RunResult], RunResult]


def journal_steps(bench: Bench, api: TagSystemAPI, logged: Logged) -> None:
    config = bench.config
    off = make_api(bench.spark, config.db_url, bench.lake, bench.work, journal=False)
    print("engine: first run, journal off", flush=True)
    store.set_rules(config.db_url, CHANGED_TAG, changed_rule(BASE_THRESHOLD))
    store.empty_table(config.db_url, "user_tags")
    _record(bench, "first_run_journal_off", [logged(task_all(off, config.as_of))])
    print("engine: 10% re-runs, journal on and off in turn", flush=True)
    changed: dict[bool, list[RunResult]] = {True: [], False: []}
    for index in range(2 * bench.runs):  # in turn: a drift of the machine's load hits both
        threshold = CHANGED_THRESHOLD if index % 2 == 0 else BASE_THRESHOLD
        store.set_rules(config.db_url, CHANGED_TAG, changed_rule(threshold))
        journal = (index // 2) % 2 == index % 2
        changed[journal].append(logged(task_all(api if journal else off, config.as_of)))
    print("engine: unchanged re-run, journal off", flush=True)
    unchanged = [logged(task_all(off, config.as_of)) for _ in range(bench.runs)]
    _record(bench, "changed_run_journal_on", changed[True])
    _record(bench, "changed_run_journal_off", changed[False])
    _record(bench, "unchanged_run_journal_off", unchanged)
    _rollback(bench, api, logged)


def _at_threshold(bench: Bench, api: TagSystemAPI, threshold: int, logged: Logged) -> RunResult:
    store.set_rules(bench.config.db_url, CHANGED_TAG, changed_rule(threshold))
    return logged(task_all(api, bench.config.as_of))


def _rollback(bench: Bench, api: TagSystemAPI, logged: Logged) -> None:
    """A journaled 10% change run from the base state, then its rollback (timed)."""
    print("engine: rollback of a 10% change run", flush=True)
    _at_threshold(bench, api, BASE_THRESHOLD, logged)
    run = _at_threshold(bench, api, CHANGED_THRESHOLD, logged)
    start = time.perf_counter()
    result = api.rollback(run.run_id)
    wall = time.perf_counter() - start
    print(f"  rollback {wall:.1f}s: {result.restored} restored, {result.deleted} deleted, "
          f"{result.conflicts} conflicts", flush=True)  # fmt: skip
    bench.phases["rollback_changed_run"] = round(wall, 3)
    bench.result["rows_written"]["rollback_changed_run"] = [
        {"restored": result.restored, "deleted": result.deleted, "conflicts": result.conflicts}
    ]
    bench.result["rollback_check"] = (
        result.restored + result.deleted == run.written and result.conflicts == 0
    )
    store.set_rules(bench.config.db_url, CHANGED_TAG, changed_rule(BASE_THRESHOLD))


def _record(bench: Bench, name: str, runs: list[RunResult]) -> None:
    summary: dict[str, Any] = summary_of(runs)
    bench.phases[name] = summary["wall"]
    for phase, seconds in summary["phases"].items():
        bench.phases[f"{name}.{phase}"] = seconds
    bench.phases[f"{name}_runs"] = [round(r.wall, 3) for r in runs]
    bench.result["rows_written"][name] = [r.rows() for r in runs]
