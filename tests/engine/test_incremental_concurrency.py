"""Incremental runs recompute only changed users; overlapping concurrent runs lose nothing."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tagsys.api import TagSystemAPI
from tagsys.errors import LakeError
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tests.engine.lakes import AS_OF, ORDERS, SHOP_TAGS, expected_tags, load_tags, write_table


def ids(db_url: str) -> dict[str, list[int]]:
    engine = create_store_engine(db_url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


def test_incremental_recomputes_only_changed_users(
    make_api, sqlite_url: str, shop_lake: Path
) -> None:
    load_tags(sqlite_url, SHOP_TAGS)
    api: TagSystemAPI = make_api(sqlite_url, shop_lake, change_columns={"customers": "joined"})
    assert api.run(api.request("task-all", as_of=AS_OF)).succeeded
    before = ids(sqlite_url)

    next_day = date(2024, 6, 30)
    rows = pq.read_table(shop_lake / "orders" / "dt=2024-06-29").to_pylist()
    changed = {r["user_id"] for r in rows[:6]}
    for row in rows:
        if row["user_id"] in changed:
            row["amount"] = 4999.0 if (row["amount"] or 0) < 2500 else 1.0
    write_table(shop_lake, "orders", rows, ORDERS, "dt=2024-06-30")
    joined_today = {
        u for u, r in _customers(shop_lake).items() if r["joined"] >= next_day.replace(day=29)
    }

    summary = api.run(api.request("incremental", days=1, as_of=next_day))
    assert summary.succeeded, summary.render()
    assert any("relative dates" in note for note in summary.notes)
    recomputed = changed | joined_today
    assert summary.users_evaluated == len(recomputed)
    expected = expected_tags(shop_lake, SHOP_TAGS, next_day)
    after = ids(sqlite_url)
    for uid in set(before) | set(after):
        if uid in recomputed:
            assert after.get(uid, []) == sorted(expected.get(uid, set())), uid
        else:
            assert after.get(uid) == before.get(uid), uid


def _customers(lake: Path) -> dict[str, dict]:
    return {r["user_id"]: r for r in pq.read_table(lake / "customers").to_pylist()}


def test_incremental_without_change_information_is_refused(
    make_api, sqlite_url: str, shop_lake: Path
) -> None:
    load_tags(sqlite_url, SHOP_TAGS)
    api: TagSystemAPI = make_api(sqlite_url, shop_lake)
    with pytest.raises(LakeError, match="customers"):
        api.run(api.request("incremental", days=1, as_of=AS_OF))


@pytest.mark.mariadb
def test_overlapping_concurrent_runs_equal_serial_runs(
    make_api, mariadb_url: str, shop_lake: Path, tmp_path: Path
) -> None:
    """Two task-tags runs sharing tag 103 at once end like one after the other."""
    load_tags(mariadb_url, SHOP_TAGS)
    api: TagSystemAPI = make_api(mariadb_url, shop_lake, write_batch_size=7)
    assert api.run(api.request("task-all", as_of=date(2024, 8, 15))).succeeded
    scopes = ([101, 103, 104], [103, 105, 102])
    errors: list[BaseException] = []

    def run(tags: list[int]) -> None:
        try:
            summary = api.run(api.request("task-tags", tag_ids=tags, as_of=AS_OF))
            assert summary.succeeded
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in scopes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    expected = {u: sorted(t) for u, t in expected_tags(shop_lake, SHOP_TAGS, AS_OF).items()}
    got = ids(mariadb_url)
    assert {u: got.get(u, []) for u in expected} == expected
