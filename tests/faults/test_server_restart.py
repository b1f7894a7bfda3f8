"""Fault: the database server restarts mid-run.

A private MariaDB (its own port and data folder, see private_server.py) is stopped at a
random moment of the run's write phase, gracefully (`mysqladmin shutdown`) or by SIGKILL of
mariadbd (crash recovery on start), and started again. Writers retry lost connections, the
recorder retries the run's final status: the run completes, or fails naming the store; it is
recorded either way, and a re-run equals the clean run.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.faults.conftest import CleanOracle, MakeApi, Template, task_all
from tests.faults.private_server import PrivateMariaDB
from tests.faults.support import (
    InjectionCounter,
    RunThread,
    check_faulty_run,
    rerun_and_compare,
    run_ids,
    running_phase,
    snapshot,
    wait_for_phase,
)

pytestmark = [pytest.mark.mariadb, pytest.mark.spark, pytest.mark.slow]

TARGET = int(os.environ.get("TAGSYS_FAULT_RESTARTS", "20"))
RESTARTS_PER_RUN = 4
MAX_RUNS = 40
"""Runs stop at TARGET restarts; more runs are only needed when restarts end write phases early
(a fast machine's shorter write phases landed 19 in 20 runs once)."""
BATCH_SIZE = 5
"""Small write batches: a write phase long enough for several restarts."""


def test_server_restarts_lose_nothing(
    private_mariadb: PrivateMariaDB,
    template: Template,
    clean_table: CleanOracle,
    make_api: MakeApi,
    fault_lake: Path,
    counter: InjectionCounter,
) -> None:
    server = private_mariadb.server
    source = template(server)
    request = task_all()
    clean = clean_table(server, request)
    work = server.clone(source)
    rng = random.Random()
    made = runs = 0
    miscounts: list[str] = []
    api = make_api(server.db_url(work), fault_lake, write_batch_size=BATCH_SIZE)
    with counter.timed("server_restart"):
        while made < TARGET and runs < MAX_RUNS:
            runs += 1
            what = f"restart run {runs}"
            server.reset(work, source)
            before = snapshot(server, work)
            known = run_ids(server, work)
            run = RunThread(api, request)
            run.start()
            if wait_for_phase(server, work, "write", run.is_alive):
                for _ in range(RESTARTS_PER_RUN):
                    time.sleep(rng.uniform(0.0, 0.5))  # a random moment of the write phase
                    if not run.is_alive() or running_phase(server, work) != "write":
                        break
                    graceful = rng.random() < 0.5
                    private_mariadb.restart(graceful=graceful)
                    made += 1
                    counter.add("server_restart", 1, "shutdown" if graceful else "sigkill")
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
            counter.outcome("server_restart", run)
    assert made >= TARGET, f"only {made} restarts landed in the write phase of {runs} runs"
    assert not miscounts, "completed runs under-counted rows written: " + "; ".join(miscounts)
