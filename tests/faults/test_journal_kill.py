"""A run SIGKILLed in its write phase: its journal holds exactly the rows it committed (each
with the row's image from before the run), and rolling it back restores them all.

One kill (a new process costs a Spark start), on the shared MariaDB; marked slow. A kill that
lands after the run recorded its end (as Spark stops) finds it completed: the same checks hold."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tagsys.store import journal
from tagsys.store.db import create_store_engine
from tests.engine.lakes import AS_OF
from tests.faults.conftest import MakeApi, Template
from tests.faults.support import Server, contents, new_runs, run_ids, snapshot, wait_for_phase
from tests.faults.test_signals import ROOT, cli_env, wait_for_group_exit

pytestmark = [pytest.mark.mariadb, pytest.mark.spark, pytest.mark.slow]


def test_a_killed_runs_journal_is_what_it_committed_and_rolls_back(
    shared_server: Server,
    template: Template,
    make_api: MakeApi,
    fault_lake: Path,
    tmp_path: Path,
) -> None:
    server = shared_server
    work = server.clone(template(server))
    url = server.db_url(work)
    before = snapshot(server, work)
    known = run_ids(server, work)
    command = [sys.executable, str(ROOT / "main.py"), "--env", "local", "--db-url", url,
               "--lake-uri", str(fault_lake), "--mode", "task-all", "--as-of",
               AS_OF.isoformat(), "--spark-master", "local[1]"]  # fmt: skip
    log = tmp_path / "kill.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=cli_env(tmp_path), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        assert wait_for_phase(server, work, "write", lambda: process.poll() is None, 300, known)
        time.sleep(random.uniform(0.2, 0.8))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    wait_for_group_exit(process.pid)
    after = snapshot(server, work)
    (record,) = new_runs(server, work, known)
    changed = {u for u, row in after.items() if u not in before or row.content != before[u].content}

    engine = create_store_engine(url)
    try:
        entries = journal.run_entries(
            bind=engine, run_id=record.run_id, after_user=None, limit=10**9
        )
    finally:
        engine.dispose()
    by_user = {e.user_id: e for e in entries}
    assert set(by_user) == changed, f"{len(by_user)} entries for {len(changed)} changed rows"
    for user, entry in by_user.items():
        old = before.get(user)
        assert (entry.before_ids, entry.before_details) == (old.content if old else (None, None))
        if old is not None:
            assert entry.before_updated == old.updated_time.replace(tzinfo=UTC)
        assert entry.after_ids == after[user].tag_ids

    if record.status != "completed":  # else the kill came as Spark stopped: nothing to wait for
        assert record.status == "running", record.status
        deadline = time.monotonic() + 10 * (record.heartbeat_seconds or 1) + 30
        while record.effective_status(datetime.now(UTC)) != "abandoned":
            assert time.monotonic() < deadline, "the killed run never read as abandoned"
            time.sleep(0.5)  # the killed run's heartbeat must be seen to have stopped
    api = make_api(url, fault_lake)
    result = api.rollback(record.run_id)
    assert result.conflicts == 0 and result.restored + result.deleted == len(changed), result
    assert contents(snapshot(server, work)) == contents(before)
    server.drop(work)
