"""Fault: a lake file is deleted or truncated between planning and reading.

The run's catalog is scanned and the run planned; then, just before the engine opens a
table's snapshot (Spark lists the files and reads their footers) or just after (Spark reads
the rows at the first action), a Parquet file of that table is deleted or truncated. This
wraps `tagsys.lake.reader.open_snapshot` / `select_snapshot` to do the damage and delegates
to them unchanged: the outcome is the product's. The run must fail with a product error
naming the table or file, write nothing, and record `failed`; with the file restored, a
re-run equals the clean run.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tagsys.errors import TagSysError
from tagsys.lake import reader
from tests.faults.conftest import CleanOracle, MakeApi, Template, task_all
from tests.faults.support import (
    InjectionCounter,
    Server,
    check_record,
    contents,
    new_runs,
    rerun_and_compare,
    run_ids,
    snapshot,
)

pytestmark = [pytest.mark.mariadb, pytest.mark.spark]

TARGET = int(os.environ.get("TAGSYS_FAULT_LAKE", "20"))
TARGETS = {
    "customers": "customers/part-0.parquet",
    "orders": "orders/dt=2024-06-29/part-0.parquet",  # the partition a run at AS_OF reads
}


class Damage:
    """Deletes or truncates one file of `table` when the engine reaches `moment`."""

    def __init__(self, lake: Path, table: str, how: str, moment: str, rng: random.Random) -> None:
        self.path = lake / TARGETS[table]
        self.table, self.how, self.moment, self.rng = table, how, moment, rng
        self.done = False

    def __call__(self, table: str, moment: str) -> None:
        if self.done or table != self.table or moment != self.moment:
            return
        self.done = True
        if self.how == "delete":
            self.path.unlink()
            return
        size = self.path.stat().st_size
        with self.path.open("r+b") as f:
            f.truncate(self.rng.randrange(0, size - 8))  # the footer is the file's last bytes


def wrap_reader(monkeypatch: pytest.MonkeyPatch, hook: Callable[[str, str], None]) -> None:
    open_snapshot, select_snapshot = reader.open_snapshot, reader.select_snapshot

    def opening(spark: Any, snapshot: Any) -> Any:
        hook(snapshot.table, "open")
        return open_snapshot(spark, snapshot)

    def selecting(frame: Any, snapshot: Any, columns: Any) -> Any:
        selected = select_snapshot(frame, snapshot, columns)
        hook(snapshot.table, "select")  # planned, not read: Spark reads at the first action
        return selected

    monkeypatch.setattr(reader, "open_snapshot", opening)
    monkeypatch.setattr(reader, "select_snapshot", selecting)


def test_damaged_lake_files_fail_the_run_cleanly(
    shared_server: Server,
    template: Template,
    clean_table: CleanOracle,
    make_api: MakeApi,
    fault_lake: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    counter: InjectionCounter,
) -> None:
    server = shared_server
    source = template(server)
    request = task_all()
    clean = clean_table(server, request)
    lake = tmp_path / "lake"
    shutil.copytree(fault_lake, lake)
    work = server.clone(source)
    rng = random.Random()
    api = make_api(server.db_url(work), lake, write_batch_size=2000)
    damage: Damage | None = None
    wrap_reader(monkeypatch, lambda table, moment: damage and damage(table, moment))
    with counter.timed("lake_file"):
        for i in range(TARGET):
            table, how, moment = (
                rng.choice(list(TARGETS)),
                rng.choice(["delete", "truncate"]),
                rng.choice(["open", "select"]),
            )
            what = f"lake fault {i + 1}: {how} {TARGETS[table]} at {moment}"
            server.reset(work, source)
            before = snapshot(server, work)
            known = run_ids(server, work)
            damage = Damage(lake, table, how, moment, rng)
            with pytest.raises(TagSysError) as failure:
                api.run(request)
            damage, made = None, damage
            assert made.done, f"{what}: the damage was never made"
            message = str(failure.value)
            assert f"'{table}'" in message or str(made.path) in message, (
                f"{what}: the error does not name the table or file: {message[:1000]}"
            )
            after = snapshot(server, work)
            assert contents(after) == contents(before), f"{what}: the failed run wrote rows"
            assert after == before, f"{what}: timestamps moved"
            records = new_runs(server, work, known)
            assert len(records) == 1, f"{what}: {len(records)} tag_runs rows"
            check_record(records[0], allowed={"failed": table}, changed=0, what=what)
            counter.add("lake_file", 1, f"{how}_at_{moment}")
            shutil.copy2(fault_lake / TARGETS[table], made.path)
            rerun_and_compare(
                api, request, server, work, before=before, after=after, clean=clean, what=what
            )
