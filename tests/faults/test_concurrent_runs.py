"""Fault: four overlapping runs at once, with different tag and user scopes, repeated.

Two task-tags runs sharing tag 103 and two task-users runs over overlapping user lists (one
with all tags) start together on the shared Spark session, with small write batches so their
writers interleave. Every repetition must end with exactly the rows of the same four runs run
one after the other (the order does not matter: each tag's computed value is fixed by the
lake), every run completed (no deadlock reaches the caller), no row duplicated, no
updated_time moved without a content change; then one of the four, run again, changes
nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tagsys.engine.plan import RunRequest
from tests.engine.lakes import AS_OF
from tests.faults.conftest import USERS, MakeApi, Template
from tests.faults.support import (
    InjectionCounter,
    RunThread,
    Server,
    check_rerun,
    contents,
    new_runs,
    run_ids,
    snapshot,
)

pytestmark = [pytest.mark.mariadb, pytest.mark.spark]

REPEATS = int(os.environ.get("TAGSYS_FAULT_CONCURRENT_REPEATS", "5"))
USER_IDS = [f"u{i:04d}" for i in range(USERS + 50)]  # 50 listed users are in no lake table
REQUESTS = (
    RunRequest(mode="task-tags", as_of=AS_OF, tag_ids=(101, 103, 104)),
    RunRequest(mode="task-tags", as_of=AS_OF, tag_ids=(103, 105, 102)),
    RunRequest(mode="task-users", as_of=AS_OF, tag_ids=(101, 102), user_ids=tuple(USER_IDS[::2])),
    RunRequest(mode="task-users", as_of=AS_OF, user_ids=tuple(USER_IDS[1000::3])),
)


def test_overlapping_runs_equal_serial_runs(
    shared_server: Server,
    template: Template,
    make_api: MakeApi,
    fault_lake: Path,
    counter: InjectionCounter,
) -> None:
    server = shared_server
    source = template(server)
    work = server.clone(source)
    api = make_api(server.db_url(work), fault_lake, write_batch_size=10)
    for request in REQUESTS:  # the serial result
        assert api.run(request).succeeded
    serial = snapshot(server, work)
    with counter.timed("concurrent_run"):
        for repeat in range(REPEATS):
            what = f"concurrent repetition {repeat + 1}"
            server.reset(work, source)
            before = snapshot(server, work)
            known = run_ids(server, work)
            threads = [RunThread(api, request) for request in REQUESTS]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=600)
            errors = [f"{t.request.mode}: {t.error!r}" for t in threads if t.error]
            assert not errors, f"{what}: runs failed: {errors}"
            assert all(t.summary.succeeded for t in threads), f"{what}: a run did not succeed"
            after = snapshot(server, work)
            assert contents(after) == contents(serial), f"{what}: differs from the serial runs"
            check_rerun(before, after, serial, what)
            records = new_runs(server, work, known)
            assert sorted(r.status for r in records) == ["completed"] * 4, f"{what}: {records}"
            counter.add("concurrent_run", len(threads))
            again = REQUESTS[repeat % len(REQUESTS)]
            summary = api.run(again)
            assert summary.succeeded and summary.rows_inserted + summary.rows_updated == 0
            assert snapshot(server, work) == after, f"{what}: re-running {again.mode} changed rows"
