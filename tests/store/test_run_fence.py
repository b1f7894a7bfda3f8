"""A run read as abandoned is ended before anything acts on it (a rollback, the audience
index taking it in), and an ended run's writers commit nothing more: a run that was only
slow cannot write behind them. On SQLite and MariaDB."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tagsys.audiences import maintain
from tagsys.errors import RunError, UsageError
from tagsys.history import retention, rollback
from tagsys.store import journal, repository, runs, writer
from tagsys.store.db import database_now
from tagsys.store.writer import WriteRequest, write_rows
from tagsys.tagsets import TagInfo, TagScope
from tests.history.support import run_journal
from tests.store.support import start_run

DEFS = {t: TagInfo(f"tag{t}", "c") for t in range(1, 4)}
T1 = datetime(2026, 1, 1, 8, tzinfo=UTC)


def start(engine: sa.Engine, run_id: str) -> None:
    start_run(engine, run_id, mode="task-tags", heartbeat_seconds=10)


def fall_silent(engine: sa.Engine, run_id: str) -> runs.RunRecord:
    """The run's last beat a minute ago by the database's clock: it reads abandoned."""
    with engine.begin() as conn:
        beat_at = database_now(conn) - timedelta(minutes=1)
        conn.execute(
            sa.update(runs.tag_runs)
            .where(runs.tag_runs.c.run_id == run_id)
            .values(heartbeat_at=beat_at)
        )
    run = runs.get_run(bind=engine, run_id=run_id)
    assert run is not None and run.effective_status() == "abandoned"
    return run


def request(url: str, run_id: str) -> WriteRequest:
    scope = TagScope(frozenset({1, 2}))
    return WriteRequest(url, scope, DEFS, T1, batch_size=2, run_id=run_id, fence_run=run_id)


def rows(engine: sa.Engine) -> dict[str, list[int]]:
    return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}


def test_an_ended_run_s_writers_commit_nothing_more(migrated_url: str, engine: sa.Engine) -> None:
    start(engine, "R")
    write_rows(request(migrated_url, "R"), [("a", [1]), ("b", [2])])
    run = fall_silent(engine, "R")
    assert runs.end_abandoned(bind=engine, run=run)
    ended = runs.get_run(bind=engine, run_id="R")
    assert ended is not None and ended.status == "failed" and "abandoned" in (ended.error or "")
    with pytest.raises(RunError, match="run R is recorded as failed"):
        write_rows(request(migrated_url, "R"), [("a", [2]), ("c", [1])])
    with pytest.raises(RunError, match="recorded as failed"):  # the bulk path of new rows too
        write_rows(replace(request(migrated_url, "R"), batch_size=1000), [("d", [1])])
    assert rows(engine) == {"a": [1], "b": [2]}
    assert set(run_journal(migrated_url, "R")) == {"a", "b"}


def test_a_run_that_beat_again_is_not_ended(engine: sa.Engine) -> None:
    start(engine, "R")
    run = fall_silent(engine, "R")
    assert runs.beat(bind=engine, run_id="R")  # it was only slow
    assert not runs.end_abandoned(bind=engine, run=run)
    again = runs.get_run(bind=engine, run_id="R")
    assert again is not None and again.effective_status() == "running"


def test_rolling_back_an_abandoned_run_ends_it_first(migrated_url: str, engine: sa.Engine) -> None:
    write_rows(replace(request(migrated_url, "A"), fence_run=None), [("a", [2])])
    start(engine, "R")
    write_rows(request(migrated_url, "R"), [("a", [1]), ("b", [1])])
    fall_silent(engine, "R")
    assert rollback.check_target(engine, "R", dry_run=True).status == "running"  # no change
    target = rollback.check_target(engine, "R")
    assert target.status == "failed"
    with pytest.raises(RunError, match="recorded as failed"):  # R was only slow: too late
        write_rows(request(migrated_url, "R"), [("c", [1])])
    summary = rollback.new_summary("R", dry_run=False, as_of=date(2026, 1, 2))
    rollback.execute(migrated_url, summary, batch_size=10, journal_on=True)
    assert rows(engine) == {"a": [2]}


def test_a_running_run_cannot_be_rolled_back(engine: sa.Engine) -> None:
    start(engine, "R")
    with pytest.raises(UsageError, match="still running"):
        rollback.check_target(engine, "R")


def test_the_audience_index_ends_an_abandoned_run_before_taking_it_in(
    migrated_url: str, engine: sa.Engine
) -> None:
    maintain.rebuild(engine)
    start(engine, "R")
    write_rows(request(migrated_url, "R"), [("a", [1])])
    fall_silent(engine, "R")
    publication = maintain.catch_up(engine)
    assert publication is not None and publication.runs == ["R"]
    ended = runs.get_run(bind=engine, run_id="R")
    assert ended is not None and ended.status == "failed"
    with pytest.raises(RunError, match="recorded as failed"):
        write_rows(request(migrated_url, "R"), [("b", [1])])
    assert maintain.pending(engine) == ([], [])


def test_a_stopped_run_counts_the_batches_its_end_waited_for(
    migrated_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch past its fence when the run fails commits before the end is recorded; the
    rows_written recorded with the end includes it (it was counted before, and missed it)."""
    start(engine, "R")
    write_rows(request(migrated_url, "R"), [("a", [1])])
    fenced, release = threading.Event(), threading.Event()
    fence = writer.check_fence

    def held_fence(cursor: Any, adapter: Any, run_id: str | None) -> None:
        fence(cursor, adapter, run_id)
        fenced.set()
        assert release.wait(30)

    monkeypatch.setattr(writer, "check_fence", held_fence)
    late = threading.Thread(target=write_rows, args=(request(migrated_url, "R"), [("b", [2])]))
    late.start()
    assert fenced.wait(30)

    def count(conn: sa.Connection) -> int:
        return journal.count_entries(bind=conn, run_id="R")

    ending = threading.Thread(
        target=runs.finish_counted,
        kwargs={
            "engine": engine,
            "run_id": "R",
            "status": "failed",
            "summary": None,
            "error": "boom",
            "count_written": count,
        },
    )
    ending.start()
    time.sleep(0.5)  # the end waits for the fenced batch's commit
    release.set()
    late.join(30)
    ending.join(30)
    ended = runs.get_run(bind=engine, run_id="R")
    assert ended is not None and ended.status == "failed"
    assert rows(engine) == {"a": [1], "b": [2]}
    assert ended.rows_written == 2 == len(run_journal(migrated_url, "R"))


def test_a_prune_ends_an_abandoned_run_before_deleting_its_journal(
    migrated_url: str, engine: sa.Engine
) -> None:
    start(engine, "R")
    write_rows(request(migrated_url, "R"), [("a", [1])])
    fall_silent(engine, "R")
    assert retention.prune(engine, days=0).runs == 1
    ended = runs.get_run(bind=engine, run_id="R")
    assert ended is not None and (ended.status, ended.journal) == ("failed", "pruned")
    with pytest.raises(RunError, match="recorded as failed"):  # nothing unjournaled after it
        write_rows(request(migrated_url, "R"), [("b", [1])])


def test_a_prune_leaves_a_live_run_alone(engine: sa.Engine) -> None:
    start(engine, "R")
    assert retention.prune(engine, days=0).runs == 0
    run = runs.get_run(bind=engine, run_id="R")
    assert run is not None and (run.status, run.journal) == ("running", "on")
