"""Fault: the run's database connections are killed from another session (`KILL CONNECTION`).

An injector thread waits until the run's tag_runs row says phase `write`, then at random
moments kills every connection to the run's database (the Spark writers', the driver's, the
heartbeat's) except its own, up to KILLS_PER_RUN times per run. Writers retry lost
connections: the run completes with the clean run's rows, or fails naming the store. Either
way it is recorded, rows are each as before or as the clean run has them, and a re-run
equals the clean run.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pymysql
import pytest

from tests.faults.conftest import CleanOracle, MakeApi, Template, task_all
from tests.faults.support import (
    InjectionCounter,
    RunThread,
    Server,
    check_faulty_run,
    rerun_and_compare,
    run_ids,
    running_phase,
    snapshot,
    wait_for_phase,
)

pytestmark = [pytest.mark.mariadb, pytest.mark.spark]

TARGET = int(os.environ.get("TAGSYS_FAULT_KILLS", "20"))
KILLS_PER_RUN = 6
MAX_RUNS = 40  # the loop stops at TARGET; a fast host lands fewer kills per write phase
UNKNOWN_THREAD = 1094


def kill_connections(server: Server, database: str, run: RunThread, rng: random.Random) -> int:
    """Up to KILLS_PER_RUN kills at random moments of the write phase; returns how many
    killed at least one of the run's connections."""
    if not wait_for_phase(server, database, "write", run.is_alive):
        return 0
    made = 0
    with server.connect() as conn, conn.cursor() as cur:
        for _ in range(KILLS_PER_RUN):
            time.sleep(rng.uniform(0.0, 0.2))  # a random moment; the outcome is asserted later
            if not run.is_alive() or running_phase(server, database) != "write":
                break
            cur.execute(
                "SELECT id FROM information_schema.processlist"
                " WHERE db = %s AND id <> CONNECTION_ID()",
                (database,),
            )
            killed = 0
            for (thread_id,) in cur.fetchall():
                try:
                    cur.execute(f"KILL CONNECTION {int(thread_id)}")
                    killed += 1
                except pymysql.err.OperationalError as exc:
                    if exc.args[0] != UNKNOWN_THREAD:  # it ended on its own meanwhile
                        raise
            made += killed > 0
    return made


def test_killed_connections_lose_nothing(
    shared_server: Server,
    template: Template,
    clean_table: CleanOracle,
    make_api: MakeApi,
    fault_lake: Path,
    counter: InjectionCounter,
) -> None:
    server = shared_server
    source = template(server)
    request = task_all()
    clean = clean_table(server, request)
    work = server.clone(source)
    rng = random.Random()
    made = runs = 0
    miscounts: list[str] = []
    try:
        api = make_api(server.db_url(work), fault_lake)
        with counter.timed("connection_kill"):
            while made < TARGET and runs < MAX_RUNS:
                runs += 1
                what = f"kill run {runs}"
                server.reset(work, source)
                before = snapshot(server, work)
                known = run_ids(server, work)
                run = RunThread(api, request)
                run.start()
                kills = kill_connections(server, work, run, rng)
                run.join(timeout=300)
                after = check_faulty_run(
                    server,
                    work,
                    run,
                    before=before,
                    known=known,
                    clean=clean,
                    what=what,
                    miscounts=miscounts,
                )
                rerun_and_compare(
                    api, request, server, work, before=before, after=after, clean=clean, what=what
                )
                counter.add("connection_kill", kills)
                counter.outcome("connection_kill", run)
                made += kills
    finally:
        server.drop(work)
    assert made >= TARGET, f"only {made} kills landed in the write phase of {runs} runs"
    # Product defect: a batch whose COMMIT succeeded but whose acknowledgement was lost with
    # the killed connection is retried, finds its rows already merged, and counts them as
    # unchanged: the summary (and rows_written of a completed run) under-counts.
    assert not miscounts, "completed runs under-counted rows written: " + "; ".join(miscounts)
