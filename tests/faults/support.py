"""What every fault test shares: databases cloned from a template, table snapshots, the
clean-run oracle, the invariants checked after a fault, and the run records."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql
import sqlalchemy as sa

if TYPE_CHECKING:
    from tagsys.store.repository import RunRecord

KINDS = ("connection_kill", "server_restart", "sigkill", "sigterm", "lake_file", "concurrent_run")


class InjectionCounter:
    """Injections made (and survived: the test asserts after each) per kind, and time per kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self.details: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, kind: str, n: int = 1, detail: str | None = None) -> None:
        assert kind in KINDS, kind
        with self._lock:
            self.counts[kind] += n
            if detail:
                self.details[f"{kind}:{detail}"] += n

    def outcome(self, kind: str, run: RunThread) -> None:
        """How the injected run ended (completed, or failed naming the store)."""
        with self._lock:
            self.details[f"{kind}:run_{'failed' if run.error else 'completed'}"] += 1

    @contextmanager
    def timed(self, kind: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[kind] += time.monotonic() - start

    def write(self, path: Path) -> None:
        data = {
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "injections": dict(sorted(self.counts.items())),
            "details": dict(sorted(self.details.items())),
            "seconds": {k: round(v, 1) for k, v in sorted(self.seconds.items())},
        }
        path.write_text(json.dumps(data, indent=2) + "\n")


# --- databases ------------------------------------------------------------------------------


CREATED: list[tuple[Server, str]] = []
"""Databases the fault tests made and have not dropped yet (dropped when the session ends)."""


@dataclass(frozen=True)
class Server:
    """A MariaDB server the tests may create databases on."""

    host: str
    port: int
    user: str = "root"

    @property
    def url(self) -> str:
        return f"mysql+pymysql://{self.user}@{self.host}:{self.port}"

    def connect(self, database: str | None = None, **kwargs: Any) -> pymysql.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            database=database,
            autocommit=True,
            connect_timeout=5,
            **kwargs,
        )

    def db_url(self, name: str) -> str:
        return f"{self.url}/{name}?charset=utf8mb4"

    def create(self, prefix: str = "tagsys_fault") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        CREATED.append((self, name))
        return name

    def drop(self, name: str) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        with contextlib.suppress(ValueError):
            CREATED.remove((self, name))

    def reset(self, target: str, source: str) -> None:
        """Make `target`'s user_tags rows those of `source` again (tag_runs keep their rows:
        tests tell runs apart by id). The database keeps its name, so the writers' cached
        engines of earlier runs are reused instead of piling up connections."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"TRUNCATE TABLE `{target}`.user_tags")
            cur.execute(_copy_rows(target, source, "user_tags"))

    def clone(self, source: str) -> str:
        """A new database with the schema of the product's migrations and the rows of
        `source` (timestamps included)."""
        from tagsys.store.migrate import upgrade

        name = self.create()
        upgrade(self.db_url(name))
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")
            cur.execute(f"SHOW FULL TABLES FROM `{source}` WHERE Table_type = 'BASE TABLE'")
            tables = [row[0] for row in cur.fetchall() if row[0] != "alembic_version"]
            for table in tables:  # rows the migrations wrote (the index's state) give way
                cur.execute(f"DELETE FROM `{name}`.`{table}`")
                cur.execute(_copy_rows(name, source, table))
        return name


USER_TAGS_COLUMNS = "user_id, tag_ids, tag_details, created_time, updated_time"


def _copy_rows(target: str, source: str, table: str) -> str:
    """user_tags rows get new ids in id order: after rows were inserted with explicit ids,
    MariaDB 10.11.19 refused the writers' concurrent upserts with error 1467 ("Failed to read
    auto-increment value from storage engine")."""
    if table != "user_tags":
        return f"INSERT INTO `{target}`.`{table}` SELECT * FROM `{source}`.`{table}`"
    return (
        f"INSERT INTO `{target}`.user_tags ({USER_TAGS_COLUMNS})"
        f" SELECT {USER_TAGS_COLUMNS} FROM `{source}`.user_tags ORDER BY id"
    )


def server_of(url: str) -> Server:
    parsed = sa.make_url(url)
    return Server(parsed.host or "127.0.0.1", parsed.port or 3306, parsed.username or "root")


# --- table snapshots ------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    tag_ids: str
    tag_details: str
    created_time: datetime
    updated_time: datetime

    @property
    def content(self) -> tuple[str, str]:
        return self.tag_ids, self.tag_details


Table = dict[str, Row]


def snapshot(server: Server, database: str) -> Table:
    """Every user_tags row as stored (JSON text exactly as the server returns it)."""
    with server.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), COUNT(DISTINCT user_id) FROM user_tags")
        total, distinct = cur.fetchone()
        assert total == distinct, f"duplicated users in user_tags: {total} rows, {distinct} ids"
        cur.execute(
            "SELECT user_id, tag_ids, tag_details, created_time, updated_time FROM user_tags"
        )
        rows = {uid: Row(ids, det, ct, ut) for uid, ids, det, ct, ut in cur.fetchall()}
    assert len(rows) == total
    return rows


def contents(table: Table) -> dict[str, tuple[str, str]]:
    return {uid: row.content for uid, row in table.items()}


def check_partial(before: Table, after: Table, clean: Table, what: str) -> int:
    """After a faulty run of one request: nothing lost, every row either as before or as the
    clean run has it (a row is never half-merged), and no updated_time/created_time moved for
    a row whose content did not change. Returns how many rows changed."""
    lost = sorted(set(before) - set(after))
    assert not lost, f"{what}: rows lost: {lost[:10]}"
    changed = 0
    for uid, row in after.items():
        old = before.get(uid)
        new = clean.get(uid)
        allowed = {r.content for r in (old, new) if r is not None}
        assert row.content in allowed, (
            f"{what}: user {uid} holds {row.content}, neither its row before the run "
            f"({old.content if old else 'absent'}) nor the clean run's "
            f"({new.content if new else 'absent'})"
        )
        if old is None:
            changed += 1
            continue
        assert row.created_time == old.created_time, f"{what}: created_time of {uid} moved"
        if row.content == old.content:
            assert row.updated_time == old.updated_time, (
                f"{what}: updated_time of {uid} moved ({old.updated_time} -> "
                f"{row.updated_time}) without a content change"
            )
        else:
            changed += 1
    return changed


def check_rerun(
    before: Table, rerun: Table, clean: Table, what: str, previous: Table | None = None
) -> None:
    """The re-run's table equals the clean run's (user_id, tag_ids, tag_details exactly);
    rows whose content is what it was before the faulty run (or, `previous`, just before the
    re-run) kept their timestamps."""
    got, want = contents(rerun), contents(clean)
    if got != want:
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        differ = sorted(u for u in set(got) & set(want) if got[u] != want[u])[:5]
        raise AssertionError(
            f"{what}: re-run differs from the clean run: missing {missing}, extra {extra}, "
            f"different {[(u, got[u], want[u]) for u in differ]}"
        )
    for uid, row in rerun.items():
        old = before.get(uid)
        if old is not None and row.content == old.content:
            assert row.updated_time == old.updated_time, f"{what}: updated_time of {uid} moved"
        if old is not None:
            assert row.created_time == old.created_time, f"{what}: created_time of {uid} moved"
        last = (previous or {}).get(uid)
        if last is not None and row.content == last.content:
            assert row.updated_time == last.updated_time, (
                f"{what}: updated_time of {uid} moved, its content did not change"
            )


# --- run records (the run-record contract: tag_runs rows from the start of a run) ----------


def runs(server: Server, database: str) -> list[RunRecord]:
    from tagsys.store import repository
    from tagsys.store.db import create_store_engine

    engine = create_store_engine(server.db_url(database))
    try:
        return repository.list_runs(bind=engine, limit=1000)
    finally:
        engine.dispose()


def new_runs(server: Server, database: str, known: set[str]) -> list[RunRecord]:
    return [r for r in runs(server, database) if r.run_id not in known]


def run_ids(server: Server, database: str) -> set[str]:
    return {r.run_id for r in runs(server, database)}


def running_phase(server: Server, database: str, known: set[str] | None = None) -> str | None:
    """The phase of the database's running run (None when none runs), read with SQL so that
    polling it costs one short query. Runs in `known` (e.g. an earlier SIGKILLed run, whose
    row stays `running`) are not this run."""
    with server.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT run_id, phase FROM tag_runs WHERE status = 'running'")
        phases = [str(phase) for run_id, phase in cur.fetchall() if run_id not in (known or ())]
    return phases[0] if phases else None


def wait_for_phase(
    server: Server,
    database: str,
    phase: str,
    alive: Any,
    timeout: float = 120.0,
    known: set[str] | None = None,
) -> bool:
    """Poll until a running run of `database` (not in `known`) is in `phase`; False when
    `alive()` turns false first (the run finished). Bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running_phase(server, database, known) == phase:
            return True
        if not alive():
            return False
        time.sleep(0.02)
    raise AssertionError(f"no run of {database} reached phase {phase!r} in {timeout:.0f} s")


def check_record(
    record: RunRecord, *, allowed: Mapping[str, str], changed: int | None, what: str
) -> None:
    """The run's tag_runs row has a final status of `allowed` (status -> what its error must
    mention), and for a failed run `rows_written` is the rows it committed."""
    status = record.effective_status(datetime.now(UTC) + timedelta(days=1))
    assert record.status in allowed or status in allowed, (
        f"{what}: run {record.run_id} recorded {record.status!r} (reads as {status!r}), "
        f"expected one of {sorted(allowed)}; error: {record.error}"
    )
    key = record.status if record.status in allowed else status
    needle = allowed[key]
    if needle:
        assert record.error and needle.lower() in record.error.lower(), (
            f"{what}: run {record.run_id} {key} with error {record.error!r}, "
            f"which does not mention {needle!r}"
        )
    if record.status in ("completed", "failed", "cancelled"):
        assert record.finished_at is not None, f"{what}: {record.status} run without finished_at"
    if record.status == "failed" and changed is not None:
        assert record.rows_written == changed, (
            f"{what}: failed run recorded rows_written={record.rows_written}, but {changed} "
            "rows changed"
        )


# --- in-process runs and what is checked after each -----------------------------------------


class RunThread(threading.Thread):
    """One in-process run on its own thread; its summary or exception kept for the test."""

    def __init__(self, api: Any, request: Any) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.request = request
        self.summary: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.summary = self.api.run(self.request)
        except BaseException as exc:  # the test asserts on it
            self.error = exc


def check_faulty_run(
    server: Server,
    database: str,
    run: RunThread,
    *,
    before: Table,
    known: set[str],
    clean: Table,
    what: str,
    miscounts: list[str] | None = None,
) -> Table:
    """After a run hit by faults: it either completed with exactly the clean run's rows, or
    failed with an error naming the store and left rows that are each as before or as the
    clean run has them; one tag_runs row records which, with the rows it wrote."""
    assert not run.is_alive(), f"{what}: the run did not finish"
    after = snapshot(server, database)
    changed = check_partial(before, after, clean, what)
    records = new_runs(server, database, known)
    assert len(records) == 1, f"{what}: expected one new tag_runs row, found {len(records)}"
    record = records[0]
    if run.error is None:
        assert run.summary is not None and run.summary.succeeded, f"{what}: run did not succeed"
        assert contents(after) == contents(clean), f"{what}: completed run differs from clean"
        assert record.status == "completed", f"{what}: completed run recorded {record.status}"
        written = run.summary.rows_inserted + run.summary.rows_updated
        if written != changed:  # asserted by the caller after its injections (a known defect)
            (miscounts if miscounts is not None else []).append(
                f"{what}: summary says {written} rows written, {changed} changed"
            )
            if miscounts is None:
                raise AssertionError(
                    f"{what}: summary says {written} rows written, {changed} changed"
                )
    else:
        message = str(run.error)
        assert database in message and "store" in message, (
            f"{what}: the run failed with an error that does not name the store: "
            f"{type(run.error).__name__}: {message[:2000]}"
        )
        check_record(record, allowed={"failed": database}, changed=changed, what=what)
    return after


def rerun_and_compare(
    api: Any,
    request: Any,
    server: Server,
    database: str,
    *,
    before: Table,
    after: Table,
    clean: Table,
    what: str,
) -> None:
    """Re-run the request without faults: it completes and the table equals the clean run's."""
    known = run_ids(server, database)
    summary = api.run(request)
    assert summary.succeeded, f"{what}: re-run failed: {summary.render()}"
    check_rerun(before, snapshot(server, database), clean, f"{what} (re-run)", after)
    records = new_runs(server, database, known)
    assert [r.status for r in records] == ["completed"], f"{what}: re-run recorded {records}"
