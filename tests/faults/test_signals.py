"""Fault: SIGKILL or SIGTERM of the run's process (the CLI, in a new process).

The CLI runs task-all against the shared MariaDB with a one-second heartbeat. When its
tag_runs row shows phase `write`, the test waits a random 0-1 s and signals the process.
SIGTERM: the run stops gracefully, cancels its Spark jobs, records `cancelled` and exits 143.
SIGKILL: the row stays `running` and reads as `abandoned` once its heartbeat is old. Either
way every row is as before or as the clean run has it, the process group (Spark's JVM and
Python workers) goes away, and an in-process re-run equals the clean run.
A signal that arrives as the run records its end, or after (while Spark stops), finds it
`completed` with exactly the clean run's rows: a SIGTERM never cuts the final record short.

New processes cost 15-60 s each (Spark start), so this part runs SIGNALS injections per
signal (TAGSYS_FAULT_SIGNALS) and is marked slow; CI runs it all the same.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.engine.lakes import AS_OF
from tests.faults.conftest import CleanOracle, MakeApi, Template, task_all
from tests.faults.support import (
    InjectionCounter,
    Server,
    check_partial,
    check_record,
    new_runs,
    rerun_and_compare,
    run_ids,
    snapshot,
    wait_for_phase,
)

pytestmark = [pytest.mark.mariadb, pytest.mark.spark, pytest.mark.slow]

SIGNALS = int(os.environ.get("TAGSYS_FAULT_SIGNALS", "3"))
ROOT = Path(__file__).resolve().parents[2]
GROUP_EXIT_TIMEOUT = 60.0


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TAGSYS_RUN_HEARTBEAT_SECONDS="1",
        TAGSYS_WRITE_BATCH_SIZE="10",
        TAGSYS_DATA_DIR=str(tmp_path / "cli-data"),
        TAGSYS_SPARK_CONF=json.dumps(
            {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}
        ),
        PYSPARK_PYTHON=sys.executable,
    )
    return env


def wait_for_group_exit(pgid: int) -> None:
    """The run's process group (the CLI, Spark's JVM, its Python workers) must end on its
    own after the CLI does; killed here only if it does not, and then the test fails."""
    deadline = time.monotonic() + GROUP_EXIT_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    raise AssertionError(f"processes of the run outlived it by {GROUP_EXIT_TIMEOUT:.0f} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_signalled_runs_lose_nothing(
    signum: signal.Signals,
    shared_server: Server,
    template: Template,
    clean_table: CleanOracle,
    make_api: MakeApi,
    fault_lake: Path,
    tmp_path: Path,
    counter: InjectionCounter,
) -> None:
    kind = signum.name.lower()
    server = shared_server
    source = template(server)
    request = task_all()
    clean = clean_table(server, request)
    work = server.clone(source)
    url = server.db_url(work)
    api = make_api(url, fault_lake)
    rng = random.Random()
    command = [
        sys.executable,
        str(ROOT / "main.py"),
        "--env",
        "local",
        "--db-url",
        url,
        "--lake-uri",
        str(fault_lake),
        "--mode",
        "task-all",
        "--as-of",
        AS_OF.isoformat(),
        "--spark-master",
        "local[1]",
    ]
    made = 0
    with counter.timed(kind):
        for attempt in range(1, 2 * SIGNALS + 1):
            if made >= SIGNALS:
                break
            what = f"{kind} {attempt}"
            server.reset(work, source)
            before = snapshot(server, work)
            known = run_ids(server, work)
            log = tmp_path / f"{kind}-{attempt}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=cli_env(tmp_path),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

            def alive(p: subprocess.Popen[bytes] = process) -> bool:
                return p.poll() is None

            sent = False
            try:
                if wait_for_phase(server, work, "write", alive, timeout=300, known=known):
                    time.sleep(rng.uniform(0.0, 1.0))  # a random moment of the write phase
                    if alive():
                        process.send_signal(signum)
                        sent = True
                code = process.wait(timeout=300)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
            wait_for_group_exit(process.pid)
            output = log.read_text(errors="replace")[-3000:]
            after = snapshot(server, work)
            changed = check_partial(before, after, clean, what)
            records = new_runs(server, work, known)
            assert len(records) == 1, f"{what}: {len(records)} tag_runs rows; output: {output}"
            record = records[0]
            if not sent:  # the run finished before the signal: nothing was injected
                assert code == 0 and record.status == "completed", f"{what}: {output}"
            elif record.status == "completed":  # signalled after the run had recorded its end
                # 0: it came while the end was recorded (SIGTERM waits for that) or as the
                # process exited; 143 / -15: in the CLI's last steps or after them.
                late = (0, 143, -signal.SIGTERM) if signum == signal.SIGTERM else (0, -signum)
                assert code in late, f"{what}: exit code {code}; output: {output}"
                assert {u: r.content for u, r in after.items()} == {
                    u: r.content for u, r in clean.items()
                }, f"{what}: recorded completed without the clean run's rows"
            elif signum == signal.SIGTERM:
                assert code == 143, f"{what}: exit code {code}; output: {output}"
                check_record(record, allowed={"cancelled": ""}, changed=None, what=what)
            else:
                assert code == -signal.SIGKILL, f"{what}: exit code {code}"
                assert record.status == "running", f"{what}: recorded {record.status}"
                assert record.effective_status(record.heartbeat_at) == "running", what
                later = datetime.now(UTC) + timedelta(seconds=10 * record.heartbeat_seconds)
                assert record.effective_status(later) == "abandoned", what
            if sent:
                made += 1
                counter.add(kind, 1, f"rows_changed_{'some' if changed else 'none'}")
            rerun_and_compare(
                api, request, server, work, before=before, after=after, clean=clean, what=what
            )
    server.drop(work)
    assert made >= SIGNALS, f"only {made} {kind}s landed in the write phase"
