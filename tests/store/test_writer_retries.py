"""Lock wait timeouts (1205) and lost connections, provoked on the real MariaDB server:
the writer retries and the batch lands once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from tagsys.store import writer
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tagsys.store.repository import read_user_tags
from tagsys.tagsets import TagScope

from .support import T1, T2, request_for

pytestmark = pytest.mark.mariadb


def _writer_sessions_wait_at_most(url: str, seconds: int) -> None:
    """Every connection of the writer's engine gets a short innodb_lock_wait_timeout (a session
    setting: the shared server's global one is left alone)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {seconds}")
        cursor.close()

    sa.event.listen(writer._engine(url), "connect", on_connect)


def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _waiting_thread_id(observer: sa.Engine, database: str) -> int | None:
    query = sa.text(
        "SELECT t.trx_mysql_thread_id FROM information_schema.INNODB_TRX t"
        " JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id"
        " WHERE t.trx_state = 'LOCK WAIT' AND p.DB = :db"
    )
    with observer.connect() as conn:
        found = conn.execute(query, {"db": database}).scalar()
    return None if found is None else int(found)


@pytest.fixture
def store(mariadb_url: str) -> Iterator[tuple[str, sa.Engine]]:
    upgrade(mariadb_url)
    observer = create_store_engine(mariadb_url)
    yield mariadb_url, observer
    observer.dispose()
    writer.dispose_engines()


def _retry_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


def test_lock_wait_timeout_is_retried_until_the_lock_is_free(
    store: tuple[str, sa.Engine], caplog: pytest.LogCaptureFixture
) -> None:
    url, observer = store
    _writer_sessions_wait_at_most(url, 1)
    writer.write_rows(request_for(url, written_at=T1), [("a", [8])])
    request = request_for(url, scope=TagScope(frozenset({1})), written_at=T2)

    with observer.connect() as blocker, ThreadPoolExecutor(1) as pool:
        blocker.execute(sa.text("SELECT id FROM user_tags WHERE user_id = 'a' FOR UPDATE"))
        with caplog.at_level(logging.WARNING, logger="tagsys.store.writer"):
            written = pool.submit(writer.write_rows, request, [("a", [1])])
            _until(lambda: any("1205" in m for m in _retry_messages(caplog)), "a 1205 retry")
            blocker.commit()
            counts = written.result(timeout=60)

    assert counts == writer.WriteCounts(updated=1)
    rows = read_user_tags(bind=observer, user_ids=["a"])
    assert rows["a"].tag_ids == [1, 8]


def test_a_killed_connection_is_replaced_and_the_batch_lands_once(
    store: tuple[str, sa.Engine], caplog: pytest.LogCaptureFixture
) -> None:
    """The server kills the writer's connection while it waits for a lock (as a failover or
    an operator would): the writer reconnects and writes the batch."""
    url, observer = store
    _writer_sessions_wait_at_most(url, 50)
    writer.write_rows(request_for(url, written_at=T1), [("a", [8]), ("b", [8])])
    request = request_for(url, scope=TagScope(frozenset({2})), written_at=T2)
    database = str(observer.url.database)

    with observer.connect() as blocker, ThreadPoolExecutor(1) as pool:
        blocker.execute(sa.text("SELECT id FROM user_tags WHERE user_id = 'b' FOR UPDATE"))
        with caplog.at_level(logging.WARNING, logger="tagsys.store.writer"):
            written = pool.submit(writer.write_rows, request, [("a", [2]), ("b", [2])])
            _until(lambda: _waiting_thread_id(observer, database) is not None, "a lock wait")
            victim = _waiting_thread_id(observer, database)
            with observer.connect() as admin:
                admin.execute(sa.text(f"KILL CONNECTION {victim}"))
            _until(lambda: bool(_retry_messages(caplog)), "a retry after the kill")
            blocker.commit()
            counts = written.result(timeout=60)

    assert counts == writer.WriteCounts(updated=2)
    rows = read_user_tags(bind=observer, user_ids=["a", "b"])
    assert {u: r.tag_ids for u, r in rows.items()} == {"a": [2, 8], "b": [2, 8]}
    assert any(code in m for m in _retry_messages(caplog) for code in ("2013", "2006", "1927"))
