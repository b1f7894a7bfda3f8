"""Every run has a `tag_runs` row from its start to its end; a dead run reads as abandoned."""

from __future__ import annotations

import os
import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from tagsys.errors import DataError
from tagsys.store import runs
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tests.engine.lakes import AS_OF, SHOP_TAGS, load_tags, write_table


def _runs(db_url: str) -> list[runs.RunRecord]:
    engine = create_store_engine(db_url)
    try:
        return runs.list_runs(bind=engine)
    finally:
        engine.dispose()


def test_a_completed_run_is_recorded_with_who_ran_it_and_what_it_wrote(
    make_api, db_url: str, shop_lake: Path
) -> None:
    load_tags(db_url, SHOP_TAGS)
    api = make_api(db_url, shop_lake, run_heartbeat_seconds=2.5)

    summary = api.run(api.request("task-all", as_of=AS_OF))

    [record] = _runs(db_url)
    assert record.run_id == summary.run_id
    assert (record.status, record.effective_status()) == ("completed", "completed")
    assert (record.host, record.pid) == (socket.gethostname(), os.getpid())
    assert record.heartbeat_seconds == 2.5
    assert record.phase == "write"
    assert record.error is None
    assert summary.rows_inserted > 10
    assert record.rows_written == summary.rows_inserted + summary.rows_updated
    assert record.summary is not None and record.summary["rows_inserted"] == summary.rows_inserted
    assert record.finished_at is not None and record.finished_at >= record.started_at
    assert [r.run_id for r in api.list_runs()] == [summary.run_id]


def test_a_failed_run_is_recorded_failed_with_its_error(
    make_api, db_url: str, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    schema = pa.schema([("user_id", pa.string()), ("age", pa.int32())])
    write_table(
        lake, "people", [{"user_id": "u1", "age": 30}, {"user_id": "u1", "age": 31}], schema
    )
    rule = {"logic": "AND", "conditions": [{"field": "age", "operator": ">", "value": 1}]}
    load_tags(db_url, {1: ("adult", "people", [rule])})
    api = make_api(db_url, lake)

    with pytest.raises(DataError, match="more than once"):
        api.run(api.request("task-all", as_of=AS_OF))

    [record] = _runs(db_url)
    assert record.status == "failed"
    assert record.error is not None and "more than once" in record.error
    assert record.rows_written == 0
    assert api.last_summary is not None and api.last_summary.status == "failed"
    assert record.summary is not None and record.summary["status"] == "failed"


def test_a_run_that_stopped_beating_reads_as_abandoned(db_url: str) -> None:
    upgrade(db_url)
    engine = create_store_engine(db_url)
    try:
        started = runs.start_run(
            bind=engine,
            run_id="r1",
            mode="task-all",
            as_of=date(2024, 1, 1),
            host="h",
            pid=1,
            heartbeat_seconds=10,
        )
        record = runs.get_run(bind=engine, run_id="r1")
        assert record is not None and started.run_id == "r1"
        now = record.started_at
        assert record.effective_status(now + timedelta(seconds=29)) == "running"
        assert record.effective_status(now + timedelta(seconds=31)) == "abandoned"

        assert runs.beat(bind=engine, run_id="r1", phase="write")
        beaten = runs.get_run(bind=engine, run_id="r1")
        assert beaten is not None and beaten.phase == "write"
        assert beaten.heartbeat_at is not None and beaten.heartbeat_at >= now

        runs.finish_run(bind=engine, run_id="r1", status="cancelled", error="stopped by SIGTERM")
        final = runs.get_run(bind=engine, run_id="r1")
        assert final is not None
        assert final.effective_status(datetime.now(UTC) + timedelta(days=1)) == "cancelled"
        assert not runs.beat(bind=engine, run_id="r1"), "a finished run is not beaten back to life"
        runs.finish_run(bind=engine, run_id="r1", status="completed")
        again = runs.get_run(bind=engine, run_id="r1")
        assert again is not None and again.status == "cancelled", "a run finishes once"
    finally:
        engine.dispose()


def test_list_runs_and_health_show_an_abandoned_run(
    make_api, sqlite_url: str, shop_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tagsys.introspect import render_runs

    upgrade(sqlite_url)
    engine = create_store_engine(sqlite_url)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tag_runs (run_id, mode, as_of, started_at, status, host, pid, "
                "heartbeat_at, heartbeat_seconds, phase) VALUES ('dead', 'task-all', '2024-01-01', "
                ":t, 'running', 'box', 42, :t, 10, 'write')"
            ),
            {"t": long_ago.replace(tzinfo=None).isoformat(sep=" ")},
        )
    engine.dispose()
    api = make_api(sqlite_url, shop_lake)

    [record] = api.list_runs()
    text = render_runs([record])
    health = {c.name: c for c in api.health().checks}

    assert record.effective_status() == "abandoned"
    assert "abandoned" in text and "box:42 (write)" in text and "run the same request again" in text
    assert "1 abandoned" in health["runs"].detail


def test_after_a_stop_request_any_error_ends_the_run_cancelled(sqlite_url: str) -> None:
    """Interrupting a Spark call can surface as another error than the interruption."""
    from tagsys.engine.plan import RunRequest
    from tagsys.engine.recorder import RunRecorder
    from tagsys.engine.run import new_summary
    from tagsys.stopping import request_stop, reset

    upgrade(sqlite_url)
    outcomes = {}
    for stopped in (False, True):
        summary = new_summary(RunRequest(mode="task-all", as_of=date(2024, 1, 1)))
        recorder = RunRecorder(sqlite_url, heartbeat_seconds=60)
        recorder.start(summary)
        if stopped:
            request_stop()
        try:
            recorder.fail(summary, RuntimeError("Answer from Java side is empty"))
        finally:
            reset()
        outcomes[stopped] = next(r for r in _runs(sqlite_url) if r.run_id == summary.run_id)

    assert outcomes[False].status == "failed"
    assert outcomes[True].status == "cancelled"
    assert "stopped on request" in (outcomes[True].error or "")


def test_a_sigterm_while_the_end_is_recorded_leaves_no_running_row(sqlite_url: str) -> None:
    """The CLI's SIGTERM handler raises where the main thread is; in the final UPDATE it would
    leave a finished run `running` (read later as abandoned). The signal is sent from inside
    that UPDATE: the run is recorded completed all the same, and the stop is requested."""
    import signal

    from tagsys.cli import _stop_gracefully_on_sigterm
    from tagsys.engine.plan import RunRequest
    from tagsys.engine.recorder import RunRecorder
    from tagsys.engine.run import new_summary
    from tagsys.stopping import interrupts, reset, shielded, stop_requested

    upgrade(sqlite_url)
    summary = new_summary(RunRequest(mode="task-all", as_of=date(2024, 1, 1)))
    recorder = RunRecorder(sqlite_url, heartbeat_seconds=60)
    recorder.start(summary)
    sent: list[str] = []

    def terminate_during_the_final_update(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE TAG_RUNS") and "finished_at" in statement:
            sent.append(statement)
            os.kill(os.getpid(), signal.SIGTERM)  # handled before os.kill returns

    sa.event.listen(recorder.engine, "before_cursor_execute", terminate_during_the_final_update)
    previous = signal.getsignal(signal.SIGTERM)
    _stop_gracefully_on_sigterm()
    try:
        summary.finished_at = datetime.now(UTC)
        recorder.finish(summary)
        assert sent and stop_requested()
        with shielded():
            assert not interrupts()
        assert interrupts()
    finally:
        signal.signal(signal.SIGTERM, previous)
        reset()

    [record] = _runs(sqlite_url)
    assert record.status == "completed", record.status


def test_the_rows_a_failed_run_wrote_are_counted_once_the_store_answers_again(
    sqlite_url: str,
) -> None:
    """A run often fails because the store went away (a restart): the end and its count are
    retried together instead of the count being recorded as unknown."""
    from tagsys.engine.plan import RunRequest
    from tagsys.engine.recorder import RunRecorder
    from tagsys.engine.run import new_summary
    from tagsys.errors import StoreError
    from tagsys.store.writer import WriteRequest, dispose_engines, write_rows
    from tagsys.tagsets import TagInfo, TagScope

    upgrade(sqlite_url)
    summary = new_summary(RunRequest(mode="task-all", as_of=date(2024, 1, 1)))
    recorder = RunRecorder(sqlite_url, heartbeat_seconds=60, journal=True)
    recorder.start(summary)
    summary.written_at = datetime(2024, 1, 1, 8, tzinfo=UTC)
    scope, defs = TagScope(frozenset({1})), {1: TagInfo("t1", "c")}
    request = WriteRequest(
        sqlite_url, scope, defs, summary.written_at, run_id=summary.run_id, fence_run=summary.run_id
    )
    write_rows(request, [(f"u{i}", [1]) for i in range(7)])
    dispose_engines()
    failures = [2]

    def store_away(conn, cursor, statement, parameters, context, executemany) -> None:
        if "count(" in statement.lower() and failures[0]:
            failures[0] -= 1
            raise sa.exc.OperationalError(statement, parameters, Exception("gone"))

    sa.event.listen(recorder.engine, "before_cursor_execute", store_away)
    recorder.fail(summary, StoreError("the store went away"))

    [record] = _runs(sqlite_url)
    assert failures == [0]
    assert (record.status, record.rows_written) == ("failed", 7)
