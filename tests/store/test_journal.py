"""The journal of the write path: one entry per row written, in the row's transaction; none
for unchanged rows, dry runs or with the journal off; none twice for a retried batch."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from tagsys.errors import ConflictError, DataError, StoreError, UsageError
from tagsys.history import retention, rollback
from tagsys.store import journal, repository, runs
from tagsys.store.adapters import SQLiteAdapter
from tagsys.store.db import create_store_engine
from tagsys.store.journal import JournalEntry
from tagsys.store.migrate import upgrade
from tagsys.store.restore import RestoreCounts, RestoreRequest
from tagsys.store.schema import tag_runs, user_tags
from tagsys.store.schema import user_tags_journal as J
from tagsys.store.writer import NEW_ROWS_SCHEMA, WriteRequest, write_partition, write_rows
from tagsys.tagsets import TagInfo, TagScope, details_json
from tests.history.support import run_journal
from tests.store.support import start_run

DEFS = {t: TagInfo(f"tag{t}", "c") for t in range(1, 9)}
T1 = datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)
T2 = datetime(2026, 1, 2, 8, 0, 0, 654321, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def url(request: pytest.FixtureRequest) -> str:
    db_url = request.getfixturevalue(f"{request.param}_url")
    upgrade(db_url)
    return db_url


def req(url: str, run_id: str | None, at: datetime, scope: TagScope | None = None) -> WriteRequest:
    scope = scope or TagScope(all_tags=True)
    return WriteRequest(url, scope, DEFS, at, batch_size=3, run_id=run_id)


def new_rows(users: list[tuple[str, int]]) -> pa.Table:
    """Rows the engine prepared for users without one, each with a single tag."""
    return pa.table(
        {
            "user_id": [u for u, _ in users],
            "computed": [[t] for _, t in users],
            "tag_ids": [f"[{t}]" for _, t in users],
            "tag_details": [details_json({t: DEFS[t].as_detail()}) for _, t in users],
        },
        schema=NEW_ROWS_SCHEMA,
    )


def table(url: str) -> dict[str, list[int]]:
    engine = create_store_engine(url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


def test_each_written_row_has_one_entry_with_its_before_image(url: str) -> None:
    write_rows(req(url, "A", T1), [("a", [1, 2]), ("b", [3]), ("c", [4])])
    first = run_journal(url, "A")
    assert set(first) == {"a", "b", "c"}
    assert first["a"].before_ids is None and first["a"].after_ids == "[1,2]"
    assert first["a"].entered == (1, 2) and first["a"].exited == ()

    counts = write_rows(req(url, "B", T2), [("a", [2, 5]), ("b", [3]), ("d", [])])
    assert (counts.updated, counts.unchanged) == (1, 2)
    second = run_journal(url, "B")
    assert set(second) == {"a"}  # unchanged b and empty new d cost nothing
    a = second["a"]
    assert (a.before_ids, a.after_ids, a.entered, a.exited) == ("[1,2]", "[2,5]", (5,), (1,))
    assert a.before_details == details_json({1: DEFS[1].as_detail(), 2: DEFS[2].as_detail()})
    assert a.before_updated == T1 and a.written_at == T2


def test_dry_runs_and_the_journal_off_write_no_entries(url: str) -> None:
    write_rows(replace(req(url, "D", T1), dry_run=True), [("a", [1])])
    write_rows(req(url, None, T1), [("a", [1])])
    assert table(url) == {"a": [1]} and run_journal(url, "D") == {}


def test_a_retried_batch_whose_commit_landed_adds_no_second_entry(url: str) -> None:
    rows = [("a", [1]), ("b", [2]), ("c", [3]), ("d", [4])]
    write_rows(req(url, "R", T1), rows)
    again = write_rows(req(url, "R", T1), rows)  # the retry of a commit whose reply was lost
    assert again.inserted == 4 and len(run_journal(url, "R")) == 4


def test_a_batch_retried_after_another_run_wrote_its_users_keeps_the_run_s_entries(
    url: str,
) -> None:
    """R writes u, N writes u on top, then R's batch runs again (its commit reply was lost, or
    a cluster retried the task): R keeps its one entry and does not write u again, so the
    rows are those of R then N, and rolling back N then R restores the start exactly."""
    t3 = T2 + timedelta(hours=1)
    r = req(url, "R", T1, TagScope(frozenset({1})))
    write_rows(r, [("u", [1]), ("v", [1])])
    write_rows(req(url, "N", T2, TagScope(frozenset({1, 2}))), [("u", [2])])
    again = write_rows(r, [("u", [1]), ("v", [1]), ("w", [1])])
    assert (again.inserted, again.updated, again.unchanged) == (3, 0, 0)
    assert table(url) == {"u": [2], "v": [1], "w": [1]}
    entries = run_journal(url, "R")
    assert entries["u"].before_ids is None and entries["u"].after_ids == "[1]"
    assert entries["u"].written_at == T1
    for run_id in ("R", "N"):
        _recorded_at(url, run_id)
    for target in ("N", "R"):
        summary = rollback.new_summary(target, dry_run=False, as_of=t3.date())
        rollback.execute(url, summary, batch_size=2, journal_on=True)
        assert summary.rollback is not None and summary.rollback["conflicts"] == 0
    assert table(url) == {}


def test_rolling_back_a_row_with_null_details_gives_null_back(url: str) -> None:
    """The original system's rows may have NULL tag_details: a rollback restores NULL (not
    `{}`), and a second rollback finds the row already as before."""
    engine = create_store_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(user_tags).values(
                user_id="u", tag_ids=[1], tag_details=sa.null(), created_time=T1, updated_time=T1
            )
        )
    write_rows(req(url, "R", T2, TagScope(frozenset({2}))), [("u", [2])])
    _recorded_at(url, "R")
    for restored, already in ((1, 0), (0, 1)):
        summary = rollback.new_summary("R", dry_run=False, as_of=date(2026, 1, 3))
        rollback.execute(url, summary, batch_size=10, journal_on=True)
        assert (summary.rows_updated, summary.rows_unchanged) == (restored, already)
        with engine.connect() as conn:
            row = conn.execute(sa.select(user_tags.c.tag_ids, user_tags.c.tag_details)).one()
        assert list(row) == [[1], None]
    engine.dispose()


def test_a_rollback_checks_its_journal_in_pieces_the_database_accepts(sqlite_url: str) -> None:
    """SQLite builds cap a statement's variables (999 before 3.32): a rollback batch of 2,500
    users asks which ones it restored already in several statements."""
    url = sqlite_url
    upgrade(url)
    users = [f"u{i:05d}" for i in range(2500)]
    write_rows(replace(req(url, "A", T1), batch_size=2500), [(u, [1]) for u in users])
    _recorded_at(url, "A")
    engine = create_store_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _limit(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        done = journal.journaled_users(cursor, SQLiteAdapter(), "A", users)
    engine.dispose()
    assert done == dict.fromkeys(users, "inserted")


def test_bulk_inserts_are_journaled_and_a_user_with_a_row_after_all_gets_its_before_image(
    url: str,
) -> None:
    write_rows(req(url, "A", T1), [("b", [3])])
    users = ["a", "b", "c"]
    prepared = new_rows(list(zip(users, (1, 1, 2), strict=True)))
    counts = write_partition(req(url, "B", T2, TagScope(frozenset({1, 2}))), prepared.to_batches())
    assert (counts.inserted, counts.updated) == (2, 1)
    found = run_journal(url, "B")
    assert {u: (e.before_ids, e.after_ids) for u, e in found.items()} == {
        "a": (None, "[1]"),
        "b": ("[3]", "[1,3]"),
        "c": (None, "[2]"),
    }
    fresh = new_rows([("e", 4)])
    write_partition(req(url, "C", T2), fresh.to_batches())
    assert run_journal(url, "C")["e"].entered == (4,)


@pytest.mark.mariadb
def test_a_rollback_overlapping_a_run_on_the_same_users_loses_no_update(mariadb_url: str) -> None:
    """Rollback of B and a run C adding tag 8 to every user, at once, in small batches: C's
    tag is on every row in the end (no lost update); every other row is as before B unless
    the rollback reported it as a conflict (C wrote it first), then it is as B left it + 8."""
    url = mariadb_url
    upgrade(url)
    users = [f"u{i:04d}" for i in range(600)]
    write_rows(req(url, "A", T1), [(u, [1]) for u in users[::2]])
    write_rows(req(url, "B", T2), [(u, [2]) for u in users])
    _recorded_at(url, "B")
    after_b = table(url)
    summary = rollback.new_summary("B", dry_run=False, as_of=date(2026, 1, 3))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def undo() -> None:
        start.wait()
        rollback.execute(url, summary, batch_size=20, journal_on=True)

    def run_c() -> None:
        start.wait()
        scope = TagScope(frozenset({8}))
        write_rows(
            replace(req(url, "C", datetime.now(UTC), scope), batch_size=20),
            [(u, [8]) for u in reversed(users)],
        )

    threads = [threading.Thread(target=_catching(f, errors)) for f in (undo, run_c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert summary.rollback is not None
    conflicts = set(summary.rollback["conflict_sample"])
    assert summary.rollback["conflicts"] == len(conflicts) or len(conflicts) == 20
    final = table(url)
    assert all(8 in final[u] for u in users), "C's tag was lost"
    restored = summary.rows_updated + summary.rows_deleted
    assert restored + summary.rollback["conflicts"] == len(users)
    for u in users:
        rest = [t for t in final[u] if t != 8]
        assert rest in ([1] if u in users[::2] else [], after_b[u]), (u, final[u])
    conflicted = [u for u in users if [t for t in final[u] if t != 8] == after_b[u]]
    assert len(conflicted) == summary.rollback["conflicts"]


def _catching(fn: object, errors: list[BaseException]) -> object:
    def run() -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    return run


def test_a_rollback_stopped_by_a_failed_batch_reports_every_batch_that_committed(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 4th batch fails slowly, while the next one commits beside it: the summary counts
    exactly the rows restored, as the rollback's own journal and the table have them."""
    users = [f"u{i:03d}" for i in range(60)]
    write_rows(req(url, "A", T1), [(u, [1]) for u in users])
    write_rows(req(url, "B", T2), [(u, [2]) for u in users])
    _recorded_at(url, "B")
    calls = itertools.count(1)
    real_batch = rollback.restore_batch

    def failing_fourth(request: RestoreRequest, entries: list[JournalEntry]) -> RestoreCounts:
        if next(calls) == 4:
            time.sleep(1.0)  # the batch after it runs and commits meanwhile
            raise StoreError("injected: the database went away")
        return real_batch(request, entries)

    monkeypatch.setattr(rollback, "restore_batch", failing_fourth)
    summary = rollback.new_summary("B", dry_run=False, as_of=date(2026, 1, 3))
    with pytest.raises(StoreError, match="injected"):
        rollback.execute(url, summary, batch_size=5, journal_on=True)
    restored = [u for u, ids in table(url).items() if ids == [1]]
    assert len(restored) >= 15  # the three batches before the failure, at least
    assert summary.rows_updated == len(restored) == len(run_journal(url, summary.run_id))


@pytest.mark.mariadb
def test_ids_equal_under_the_collations_padding_fail_the_batch_and_change_nothing(
    mariadb_url: str,
) -> None:
    """MariaDB's utf8mb4_bin ignores trailing spaces: 'a ' finds the row of 'a'. Merged, or
    bulk-inserted (the insert is ignored, then merged), the write fails naming both ids, and
    the row of 'a' keeps its tags, outside the scope too."""
    url = mariadb_url
    upgrade(url)
    write_rows(req(url, "A", T1), [("a", [1]), ("z", [1])])
    before = table(url)
    scope = TagScope(frozenset({2}))
    with pytest.raises(DataError, match="'a ' and the stored user id 'a' differ only in trailing"):
        write_rows(req(url, "B", T2, scope), [("a ", [2])])
    prepared = new_rows([("a ", 2)])
    with pytest.raises(DataError, match="trailing spaces"):
        write_partition(req(url, "C", T2, scope), prepared.to_batches())
    assert table(url) == before
    assert not run_journal(url, "B") and not run_journal(url, "C")


def test_a_prune_that_stopped_midway_refuses_rollback_and_the_next_prune_ends_it(
    url: str,
) -> None:
    """A prune marks the run before deleting: stopped after its first chunk, the run reads
    pruned (no rollback from part of a journal) and the next prune deletes the rest."""
    users = [f"u{i:03d}" for i in range(12)]
    write_rows(req(url, "A", T1), [(u, [1]) for u in users])
    engine = create_store_engine(url)
    try:
        _recorded(engine, "A")
        with engine.begin() as conn:  # where a prune stopped: marked, 5 of 12 entries deleted
            conn.execute(
                sa.update(tag_runs).where(tag_runs.c.run_id == "A").values(journal="pruned")
            )
            conn.execute(sa.delete(J).where(J.c.run_id == "A", J.c.user_id.in_(users[:5])))
        with pytest.raises(UsageError, match="has had its journal pruned"):
            rollback.check_target(engine, "A")
        result = retention.prune(engine, days=1, now=datetime.now(UTC) + timedelta(days=400))
        assert (result.runs, result.entries) == (1, 7)
        assert not run_journal(url, "A")
        assert (
            retention.prune(engine, days=1, now=datetime.now(UTC) + timedelta(days=400)).runs == 0
        )
    finally:
        engine.dispose()


@pytest.mark.mariadb
def test_a_rollback_whose_journal_is_pruned_meanwhile_fails_and_counts_what_it_restored(
    mariadb_url: str,
) -> None:
    url = mariadb_url
    upgrade(url)
    users = [f"u{i:04d}" for i in range(1000)]
    write_rows(req(url, "A", T1), [(u, [1]) for u in users])
    write_rows(req(url, "B", T2), [(u, [2]) for u in users])
    summary = rollback.new_summary("B", dry_run=False, as_of=date(2026, 1, 3))
    errors: list[BaseException] = []
    _recorded_at(url, "B")

    def undo() -> None:
        rollback.execute(url, summary, batch_size=5, journal_on=True)

    thread = threading.Thread(target=_catching(undo, errors))
    thread.start()
    engine = create_store_engine(url)
    try:
        while not run_journal(url, summary.run_id) and thread.is_alive():
            time.sleep(0.01)
        journal.prune_run(bind=engine, run_id="B")
        thread.join(timeout=300)
    finally:
        engine.dispose()
    assert len(errors) == 1 and isinstance(errors[0], ConflictError), errors
    assert "was pruned while this rollback read it" in str(errors[0])
    restored = [u for u, ids in table(url).items() if ids == [1]]
    assert 0 < len(restored) < len(users)
    assert summary.rows_updated == len(restored) == len(run_journal(url, summary.run_id))


def test_a_rollback_stopped_midway_reports_its_run_and_counts_through_the_api(
    mariadb_url: str, tmp_path: Path
) -> None:
    """`TagSystemAPI.rollback` raises RollbackStopped: the cause (journal pruned), and the
    rollback's own run id and counts, which its rendering (the CLI's output) shows too."""
    from tagsys.api import TagSystemAPI
    from tagsys.history.rollback import RollbackStopped
    from tagsys.settings import load_settings

    url = mariadb_url
    upgrade(url)
    users = [f"u{i:04d}" for i in range(1000)]
    write_rows(req(url, "A", T1), [(u, [1]) for u in users])
    write_rows(req(url, "B", T2), [(u, [2]) for u in users])
    _recorded_at(url, "B")
    settings = load_settings("local", db_url=url, lake_uri=str(tmp_path), write_batch_size=5)
    errors: list[BaseException] = []
    engine = create_store_engine(url)
    with TagSystemAPI(settings=settings) as api:
        thread = threading.Thread(target=_catching(lambda: api.rollback("B"), errors))
        thread.start()
        while thread.is_alive() and not _rollback_entries(engine):
            time.sleep(0.01)
        journal.prune_run(bind=engine, run_id="B")
        thread.join(timeout=300)
    [stopped] = errors
    assert isinstance(stopped, RollbackStopped), stopped
    assert isinstance(stopped.cause, ConflictError) and stopped.cause.code == "journal_pruned"
    result = stopped.result
    assert result.status == "failed" and 0 < result.restored < len(users)
    assert result.restored == len(run_journal(url, result.run_id))
    assert result.run_id in str(stopped) and "STOPPED" in result.render()
    record = runs.get_run(bind=engine, run_id=result.run_id)
    assert record is not None and record.status == "failed"
    engine.dispose()


def _rollback_entries(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(
            J.join(tag_runs, J.c.run_id == tag_runs.c.run_id)
        )
        return int(conn.execute(query.where(tag_runs.c.mode == "rollback")).scalar() or 0)


def test_tag_histories_list_journal_off_runs_whose_rows_are_not_counted(url: str) -> None:
    """A journal-off run still going (or whose rows could not be counted) may have changed
    members: it is listed (so older member counts read unknown, not wrong); a dry run is not."""
    engine = create_store_engine(url)
    for run_id, journal_state, rows_written in (
        ("on", "on", 3),
        ("off-unknown", "off", None),
        ("off-wrote", "off", 5),
        ("dry", "off", 0),
        ("dry-before-2026-12-05", "off", -1),  # completed with rows_written NULL
    ):
        start_run(engine, run_id, journal=journal_state, heartbeat_seconds=10)
        if rows_written is not None:
            written = None if rows_written < 0 else rows_written
            runs.finish_run(bind=engine, run_id=run_id, status="completed", rows_written=written)
    listed = {r.run_id for r in journal.journal_runs(bind=engine, before=None, limit=10)}
    engine.dispose()
    assert listed == {"on", "off-unknown", "off-wrote"}


def _recorded(engine: sa.Engine, run_id: str) -> None:
    """The run's tag_runs row, as a run that journaled and completed leaves it."""
    start_run(engine, run_id, heartbeat_seconds=10)
    runs.finish_run(bind=engine, run_id=run_id, status="completed")


def _recorded_at(url: str, run_id: str) -> None:
    engine = create_store_engine(url)
    try:
        _recorded(engine, run_id)
    finally:
        engine.dispose()
