"""Concurrent writers must end in the state of some serial order: no lost update, no deadlock."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from tagsys.store import writer
from tagsys.store.adapters import MySQLAdapter, StoreAdapter
from tagsys.store.db import create_store_engine
from tagsys.store.repository import read_user_tags
from tagsys.store.writer import RowWriter, WriteRequest, write_rows
from tagsys.tagsets import TagScope, merge_tags

from .support import DEFINITIONS, T1, T2, request_for

T = TypeVar("T")
State = dict[str, tuple[list[int], dict[int, dict[str, Any]]]]
Computed = dict[str, list[int]]


class NaiveMySQLAdapter(MySQLAdapter):
    """The writer without row locks: a plain consistent read before the merge."""

    SELECT_FOR_MERGE_SQL = MySQLAdapter.SELECT_FOR_MERGE_SQL.replace(" FOR UPDATE", "")


def run_together(jobs: list[Callable[[], T]]) -> list[T]:
    """Start every job at the same moment on its own thread; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))

    def start(job: Callable[[], T]) -> T:
        barrier.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(start, job) for job in jobs]
        return [f.result(timeout=120) for f in futures]


def serial_state(initial: State, runs: list[tuple[TagScope, Computed]]) -> State:
    state = dict(initial)
    for scope, computed in runs:
        for user_id, tag_ids in computed.items():
            old_ids, old_details = state.get(user_id, ([], {}))
            new = merge_tags(old_ids, old_details, tag_ids, scope, DEFINITIONS)
            if new[0] or user_id in state:
                state[user_id] = new
    return state


def stored_state(engine: sa.Engine) -> State:
    rows = read_user_tags(bind=engine)
    return {uid: (row.tag_ids, row.tag_details) for uid, row in rows.items()}


def random_computed(rng: random.Random, users: list[str], scope: frozenset[int]) -> Computed:
    return {u: sorted(t for t in scope if rng.random() < 0.5) for u in users}


def shuffled_writer(
    url: str, scope: TagScope, computed: Computed, batch_size: int, seed: int
) -> Callable[[], writer.WriteCounts]:
    rows = list(computed.items())
    random.Random(seed).shuffle(rows)
    request = request_for(url, scope=scope, written_at=T2, batch_size=batch_size)
    return lambda: write_rows(request, rows)


def seed_users(url: str, rng: random.Random, users: list[str]) -> None:
    initial = {u: sorted(rng.sample([1, 2, 3, 4, 5, 6, 7, 8, 99], 3)) for u in users}
    write_rows(request_for(url, written_at=T1), initial.items())


def test_writers_with_disjoint_scopes_end_as_if_run_one_after_another(
    migrated_url: str, engine: sa.Engine
) -> None:
    rng = random.Random(20261128)
    users = [f"user-{i:04d}" for i in range(400)]
    seed_users(migrated_url, rng, users[::2])  # half the users have a row already
    initial = stored_state(engine)
    scopes = [frozenset({1, 2}), frozenset({3, 4}), frozenset({5, 6}), frozenset({7, 8})]
    runs = [(TagScope(s), random_computed(rng, users, s)) for s in scopes]

    run_together(
        [
            shuffled_writer(migrated_url, scope, computed, batch_size, seed)
            for (scope, computed), batch_size, seed in zip(
                runs, (13, 29, 50, 97), range(4), strict=True
            )
        ]
    )

    assert stored_state(engine) == serial_state(initial, runs)


@pytest.mark.mariadb
def test_writers_with_overlapping_scopes_end_in_one_of_the_serial_orders(
    mariadb_url: str,
) -> None:
    from tagsys.store.migrate import upgrade

    upgrade(mariadb_url)
    engine = create_store_engine(mariadb_url)
    rng = random.Random(7)
    users = [f"u{i:03d}" for i in range(300)]
    seed_users(mariadb_url, rng, users[1::2])
    initial = stored_state(engine)
    run_a = (TagScope(frozenset({1, 2, 3})), random_computed(rng, users, frozenset({1, 2, 3})))
    run_b = (TagScope(frozenset({3, 4, 5})), random_computed(rng, users, frozenset({3, 4, 5})))

    run_together(
        [
            shuffled_writer(mariadb_url, *run_a, batch_size=17, seed=1),
            shuffled_writer(mariadb_url, *run_b, batch_size=41, seed=2),
        ]
    )

    final = stored_state(engine)
    a_then_b = serial_state(initial, [run_a, run_b])
    b_then_a = serial_state(initial, [run_b, run_a])
    engine.dispose()
    assert set(final) == set(a_then_b) == set(b_then_a)
    assert all(final[u] in (a_then_b[u], b_then_a[u]) for u in final)


def _both_read_before_either_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each writer plans its batch (having read the rows), then waits for the other to have
    read too: the interleaving that loses an update without row locks, every time."""
    real_plan = writer.plan_batch
    barrier = threading.Barrier(2)

    def plan_then_meet(*args: Any, **kwargs: Any) -> writer.BatchPlan:
        plan = real_plan(*args, **kwargs)
        barrier.wait(timeout=60)
        return plan

    monkeypatch.setattr(writer, "plan_batch", plan_then_meet)


def _first_planner_waits_for_a_blocked_writer(
    monkeypatch: pytest.MonkeyPatch, engine: sa.Engine
) -> None:
    """The first writer to plan holds its row locks until the other writer is seen waiting
    for them (InnoDB LOCK WAIT): the overlap is certain, not left to thread timing."""
    real_plan = writer.plan_batch
    first = threading.Lock()

    def plan_then_hold(*args: Any, **kwargs: Any) -> writer.BatchPlan:
        plan = real_plan(*args, **kwargs)
        if first.acquire(blocking=False):  # only the first call ever waits
            _wait_for_lock_wait(engine, str(engine.url.database))
        return plan

    monkeypatch.setattr(writer, "plan_batch", plan_then_hold)


def _two_writers_on_the_same_users(
    url: str, adapter: StoreAdapter, interleave: Callable[[], None]
) -> State:
    """Store old-user [8], then let writers of tag 1 and tag 2 write new-user and old-user
    at once, interleaved by `interleave` (called once the initial row is stored)."""
    engine = create_store_engine(url)
    write_rows(request_for(url, written_at=T1), [("old-user", [8])])
    interleave()
    requests = [request_for(url, scope=TagScope(frozenset({tag})), written_at=T2) for tag in (1, 2)]
    rows = [[("new-user", [tag]), ("old-user", [tag])] for tag in (1, 2)]
    run_together(
        [
            lambda r=request, rs=batch: RowWriter(r, adapter=adapter).write(rs)
            for request, batch in zip(requests, rows, strict=True)
        ]
    )
    state = stored_state(engine)
    engine.dispose()
    return state


@pytest.mark.mariadb
def test_naive_read_merge_write_loses_an_update(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves the next test has teeth: without row locks, when both writers read before
    either writes, one writer's tag vanishes."""
    from tagsys.store.migrate import upgrade

    upgrade(mariadb_url)
    state = _two_writers_on_the_same_users(
        mariadb_url, NaiveMySQLAdapter(), lambda: _both_read_before_either_writes(monkeypatch)
    )

    ids = {user: tag_ids for user, (tag_ids, _) in state.items()}
    assert ids["new-user"] in ([1], [2])
    assert ids["old-user"] in ([1, 8], [2, 8])


@pytest.mark.mariadb
def test_locked_read_merge_write_keeps_both_updates(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With row locks, a writer that wants rows another writer has read waits for its
    commit, then merges with what it wrote: both tags stay."""
    from tagsys.store.migrate import upgrade

    upgrade(mariadb_url)
    observer = create_store_engine(mariadb_url)
    state = _two_writers_on_the_same_users(
        mariadb_url,
        MySQLAdapter(),
        lambda: _first_planner_waits_for_a_blocked_writer(monkeypatch, observer),
    )
    observer.dispose()

    ids = {user: tag_ids for user, (tag_ids, _) in state.items()}
    assert ids == {"new-user": [1, 2], "old-user": [1, 2, 8]}


def _wait_for_lock_wait(engine: sa.Engine, database: str, timeout: float = 60.0) -> None:
    # INNODB_TRX sometimes lists a locking read that waits only later (seen on MariaDB
    # 10.11: the waiter absent, its statement 'Sending data'), so a FOR UPDATE statement
    # that has run for over 200 ms counts as waiting too.
    query = sa.text(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST p"
        " LEFT JOIN information_schema.INNODB_TRX t ON p.ID = t.trx_mysql_thread_id"
        " WHERE p.DB = :db AND (t.trx_state = 'LOCK WAIT'"
        " OR (p.INFO LIKE '%FOR UPDATE' AND p.TIME_MS > 200))"
    )
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while conn.execute(query, {"db": database}).scalar() == 0:
            if time.monotonic() > deadline:
                raise AssertionError("the writer never waited for the blocker's lock")
            time.sleep(0.02)
            conn.rollback()


@pytest.mark.mariadb
def test_a_real_deadlock_is_retried_and_the_batch_lands(
    mariadb_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A foreign transaction locks b then a while the writer locks a then b: InnoDB picks
    the lighter writer as victim (error 1213); the writer retries and succeeds."""
    from tagsys.store.migrate import upgrade

    upgrade(mariadb_url)
    filler = [(f"f{i:03d}", [5]) for i in range(300)]
    write_rows(request_for(mariadb_url, written_at=T1), [("a", [8]), ("b", [8]), *filler])
    engine = create_store_engine(mariadb_url)
    request: WriteRequest = request_for(mariadb_url, scope=TagScope(frozenset({1})), written_at=T2)

    with engine.connect() as blocker, ThreadPoolExecutor(1) as pool:
        blocker.execute(sa.text("UPDATE user_tags SET tag_details = NULL WHERE user_id LIKE 'f%'"))
        blocker.execute(sa.text("SELECT id FROM user_tags WHERE user_id = 'b' FOR UPDATE"))
        with caplog.at_level(logging.WARNING, logger="tagsys.store.writer"):
            written = pool.submit(write_rows, request, [("b", [1]), ("a", [1])])
            _wait_for_lock_wait(engine, str(engine.url.database))
            blocker.execute(sa.text("SELECT id FROM user_tags WHERE user_id = 'a' FOR UPDATE"))
            blocker.commit()
            counts = written.result(timeout=60)

    assert counts == writer.WriteCounts(updated=2)
    assert any("1213" in record.getMessage() for record in caplog.records)
    rows = read_user_tags(bind=engine, user_ids=["a", "b"])
    engine.dispose()
    assert {u: r.tag_ids for u, r in rows.items()} == {"a": [1, 8], "b": [1, 8]}
