"""End to end: runs over a small unfamiliar lake equal the SPEC's semantics, on SQLite and MariaDB."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import text

from tagsys.api import TagSystemAPI
from tagsys.errors import DataError, StoreError, UsageError
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tests.engine.lakes import (
    ADULT,
    AS_OF,
    CUSTOMERS,
    ORDERS,
    SHOP_TAGS,
    expected_after,
    expected_tags,
    load_tags,
    write_table,
)


def stored(api: TagSystemAPI) -> dict[str, repository.UserTagsRow]:
    engine = create_store_engine(api.db_url)
    try:
        return repository.read_user_tags(bind=engine)
    finally:
        engine.dispose()


def ids(api: TagSystemAPI) -> dict[str, list[int]]:
    return {u: r.tag_ids for u, r in stored(api).items()}


def test_task_all_equals_reference_and_rerun_writes_nothing(
    shop: TagSystemAPI, shop_lake: Path
) -> None:
    summary = shop.run(shop.request("task-all", as_of=AS_OF))
    assert summary.succeeded, summary.render()
    expected = {u: sorted(t) for u, t in expected_tags(shop_lake, SHOP_TAGS, AS_OF).items() if t}
    rows = stored(shop)
    assert ids(shop) == expected
    assert summary.rows_inserted == len(expected) and summary.rows_updated == 0
    for tag_id in SHOP_TAGS:
        matched = sum(tag_id in t for t in expected.values())
        outcome = next(t for t in summary.tags if t.tag_id == tag_id)
        assert (outcome.matched, outcome.added, outcome.status) == (matched, matched, "ok")
    some = next(r for r in rows.values() if r.tag_ids)
    assert set(some.tag_details) == set(some.tag_ids)
    assert some.tag_details[some.tag_ids[0]]["tag_name"] == SHOP_TAGS[some.tag_ids[0]][0]

    again = shop.run(shop.request("task-all", as_of=AS_OF))
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    assert _job_call_sites(shop, summary.run_id) & {"io.py"}, "the first run's writers ran"
    assert not _job_call_sites(shop, again.run_id) & {"io.py"}, "no candidate: no writer task"
    dry = shop.run(shop.request("task-all", as_of=AS_OF, dry_run=True))
    assert dry.rows_updated == 0, "stored details must match their text form: no candidates"
    assert again.rows_unchanged == len(expected)
    after = stored(shop)
    assert {u: r.updated_time for u, r in after.items()} == {
        u: r.updated_time for u, r in rows.items()
    }


def _job_call_sites(api: TagSystemAPI, run_id: str) -> set[str]:
    """The source files whose actions started the Spark stages of run `run_id`."""
    tracker = api.spark.sparkContext.statusTracker()
    stages = [
        tracker.getStageInfo(stage)
        for job in tracker.getJobIdsForGroup(run_id)
        for stage in (tracker.getJobInfo(job).stageIds if tracker.getJobInfo(job) else [])
    ]
    return {Path(s.name.split(" at ")[-1].split(":")[0]).name for s in stages if s is not None}


def test_as_of_moves_relative_dates_and_partition(shop: TagSystemAPI, shop_lake: Path) -> None:
    """as_of 2024-08-20 reads `orders` dt=2024-07-31 (not dt=2024-06-29), where every amount
    is 1e9, and moves `recent_days`/`days_ago` with it."""
    later = date(2024, 8, 20)
    shop.run(shop.request("task-all", as_of=AS_OF))
    before = ids(shop)
    summary = shop.run(shop.request("task-all", as_of=later))
    assert summary.succeeded, summary.render()
    expected = {u: sorted(t) for u, t in expected_tags(shop_lake, SHOP_TAGS, later).items()}
    got = ids(shop)
    assert {u: got.get(u, []) for u in expected} == expected
    # the partition switch, stated without any expectation code: every user with an order
    # row (i % 5 != 1) spent 1e9 in dt=2024-07-31, so holds 101; in dt=2024-06-29 few did.
    buyers = {f"u{i:04d}" for i in range(60) if i % 5 != 1}
    assert {u for u, t in got.items() if 101 in t} == buyers
    assert sum(101 in t for t in before.values()) < len(buyers) // 2
    # relative dates: no last order is within 7 days of 2024-08-20, so 104 holds only by its
    # second rule: channel store and joined at least 100 days before 2024-08-20.
    store_veterans = {
        f"u{i:04d}"
        for i in range(60)
        if i % 5 != 1
        and i % 3 == 2
        and i % 7 != 3
        and AS_OF - timedelta(days=(i * 17) % 400) <= later - timedelta(days=100)
    }
    assert {u for u, t in got.items() if 104 in t} == store_veterans
    assert {u for u, t in before.items() if 104 in t} - store_veterans, "recency must drop some"
    assert summary.rows_updated == sum(before[u] != got[u] for u in before)


def test_task_tags_touches_only_its_tags(shop: TagSystemAPI, shop_lake: Path) -> None:
    engine = create_store_engine(shop.db_url)
    with engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(
            text(
                "INSERT INTO user_tags (user_id, tag_ids, tag_details, created_time, updated_time)"
                " VALUES ('u0002', '[7,101]', :d, '2020-01-01 00:00:00', '2020-01-01 00:00:00')"
            ),
            {
                "d": json.dumps(
                    {
                        "7": {"tag_name": "old", "tag_category": "kept"},
                        "101": {"tag_name": "big spender", "tag_category": "value"},
                    }
                )
            },
        )
    engine.dispose()
    old = ids(shop)
    summary = shop.run(shop.request("task-tags", tag_ids=[101, 103], as_of=AS_OF))
    assert summary.succeeded
    computed = expected_tags(shop_lake, {t: SHOP_TAGS[t] for t in (101, 103)}, AS_OF)
    scope = {101, 103}
    assert ids(shop) == {
        u: v for u, v in expected_after(old, computed, scope).items() if v or u in old
    }
    row = stored(shop)["u0002"]
    assert 7 in row.tag_ids and row.tag_details[7] == {"tag_name": "old", "tag_category": "kept"}


def test_task_users_only_listed_users(shop: TagSystemAPI, shop_lake: Path) -> None:
    users = ["u0001", "u0003", "u0030", "nobody"]
    summary = shop.run(shop.request("task-users", user_ids=users, tag_ids=[103, 105], as_of=AS_OF))
    assert summary.succeeded
    computed = expected_tags(shop_lake, {t: SHOP_TAGS[t] for t in (103, 105)}, AS_OF)
    want = {u: sorted(computed.get(u, set())) for u in users}
    assert ids(shop) == {u: v for u, v in want.items() if v}
    assert summary.users_evaluated == len(users)


def test_task_users_removes_tags_that_no_longer_hold(shop: TagSystemAPI, shop_lake: Path) -> None:
    later = AS_OF.replace(month=8, day=20)
    shop.run(shop.request("task-all", as_of=AS_OF))
    before = ids(shop)
    recent = [u for u, t in before.items() if 104 in t][:3]
    assert recent, "the lake should have recent buyers"
    summary = shop.run(shop.request("task-users", user_ids=recent, tag_ids=[104], as_of=later))
    assert summary.succeeded
    computed = expected_tags(shop_lake, {104: SHOP_TAGS[104]}, later)
    after = ids(shop)
    for uid in recent:
        assert after[uid] == sorted((set(before[uid]) - {104}) | computed.get(uid, set()))
    assert {u: t for u, t in after.items() if u not in recent} == {
        u: t for u, t in before.items() if u not in recent
    }
    removed = next(t for t in summary.tags if t.tag_id == 104).removed
    assert removed == sum(104 not in after[u] for u in recent) > 0


def test_stored_id_texts_are_read_as_json_whatever_their_spacing(shop: TagSystemAPI) -> None:
    """A task-all run compares stored texts with the computed ids' text before parsing any:
    only the texts that differ are parsed. Spacing, JSON whitespace and order leave the set
    as it is; another id is a change."""
    shop.run(shop.request("task-all", as_of=AS_OF))
    before = stored(shop)
    pairs = sorted(u for u, r in before.items() if len(r.tag_ids) >= 2)
    assert len(pairs) >= 4
    spaced, newline, reversed_, extra = pairs[:4]
    texts = {
        spaced: json.dumps(before[spaced].tag_ids),  # "[1, 2]", as MySQL 8 hands JSON back
        newline: "[\n " + ",\n ".join(map(str, before[newline].tag_ids)) + "\n]",
        reversed_: json.dumps(before[reversed_].tag_ids[::-1], separators=(",", ":")),
        extra: json.dumps([*before[extra].tag_ids, 999], separators=(",", ":")),
    }
    engine = create_store_engine(shop.db_url)
    with engine.begin() as conn:
        for user, value in texts.items():
            conn.execute(
                text("UPDATE user_tags SET tag_ids = :t WHERE user_id = :u"),
                {"t": value, "u": user},
            )
    engine.dispose()
    summary = shop.run(shop.request("task-all", as_of=AS_OF))
    assert (summary.rows_inserted, summary.rows_updated) == (0, 1)
    gone = next(t for t in summary.tags if t.tag_id == 999)
    assert (gone.status, gone.removed) == ("cleared", 1)
    assert all(t.added == 0 and t.removed == 0 for t in summary.tags if t.tag_id != 999)
    after = stored(shop)
    assert {u: sorted(r.tag_ids) for u, r in after.items()} == {
        u: r.tag_ids for u, r in before.items()
    }
    for user in (spaced, newline, reversed_):
        assert after[user].updated_time == before[user].updated_time, user
    assert after[extra].updated_time != before[extra].updated_time


def test_a_stored_text_that_is_not_json_is_never_taken_for_the_computed_set(
    sqlite_url: str, shop_lake: Path, make_api
) -> None:
    """ "[1 01,102]" is not JSON (SQLite does not check): it must reach the writer, which
    names the row, even though without its spaces it reads like the computed "[101,102]"."""
    load_tags(sqlite_url, SHOP_TAGS)
    api = make_api(sqlite_url, shop_lake)
    api.run(api.request("task-all", as_of=AS_OF))
    user, row = next((u, r) for u, r in sorted(stored(api).items()) if r.tag_ids)
    engine = create_store_engine(sqlite_url)
    with engine.begin() as conn:
        first, *rest = map(str, row.tag_ids)
        glued = "[" + ",".join([f"{first[0]} {first[1:]}", *rest]) + "]"
        conn.execute(
            text("UPDATE user_tags SET tag_ids = :t WHERE user_id = :u"), {"t": glued, "u": user}
        )
    engine.dispose()
    with pytest.raises(StoreError, match=f"user {user!r} holds malformed JSON"):
        api.run(api.request("task-all", as_of=AS_OF))


def test_renamed_tag_refreshes_details_once(shop: TagSystemAPI) -> None:
    shop.run(shop.request("task-all", as_of=AS_OF))
    holders = sorted(u for u, t in ids(shop).items() if 101 in t)
    engine = create_store_engine(shop.db_url)
    repository.upsert_tag(bind=engine, tag_id=101, tag_name='大客户 "VIP"', tag_category="value")
    engine.dispose()
    summary = shop.run(shop.request("task-all", as_of=AS_OF))
    assert (summary.rows_inserted, summary.rows_updated) == (0, len(holders))
    rows = stored(shop)
    assert all(rows[u].tag_details[101]["tag_name"] == '大客户 "VIP"' for u in holders)
    again = shop.run(shop.request("task-all", as_of=AS_OF))
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    assert _job_call_sites(shop, summary.run_id) & {"io.py"}, "the first run's writers ran"
    assert not _job_call_sites(shop, again.run_id) & {"io.py"}, "no candidate: no writer task"
    dry = shop.run(shop.request("task-all", as_of=AS_OF, dry_run=True))
    assert dry.rows_updated == 0, "stored details must match their text form: no candidates"


def test_broken_rule_fails_closed_and_keeps_assignments(
    shop: TagSystemAPI, shop_lake: Path
) -> None:
    shop.run(shop.request("task-all", as_of=AS_OF))
    before = ids(shop)
    broken = {
        "logic": "AND",
        "conditions": [
            {"field": "amount", "operator": ">=", "value": 2500},
            {"field": "no_such_field", "operator": "=", "value": 1},
        ],
    }
    engine = create_store_engine(shop.db_url)
    repository.replace_rules(bind=engine, tag_id=101, rules=[json.dumps(broken)])
    repository.replace_rules(bind=engine, tag_id=103, rules=["[1, 2]"])
    engine.dispose()
    summary = shop.run(shop.request("task-all", as_of=AS_OF))
    assert not summary.succeeded
    failed = {t.tag_id: t.message for t in summary.failed_tags}
    assert set(failed) == {101, 103}
    assert "no_such_field" in failed[101] and "conditions[1].field" in failed[101]
    after = ids(shop)
    for uid, tags in before.items():
        assert (101 in tags) == (101 in after[uid]) and (103 in tags) == (103 in after[uid])


def test_stale_and_inactive_tags_are_removed(
    shop: TagSystemAPI, shop_lake: Path, make_api, db_url: str
) -> None:
    shop.run(shop.request("task-all", as_of=AS_OF))
    engine = create_store_engine(shop.db_url)
    repository.upsert_tag(
        bind=engine, tag_id=105, tag_name="no orders", tag_category="activity", is_active=False
    )
    engine.dispose()
    had_105 = [u for u, t in ids(shop).items() if 105 in t]
    assert had_105
    summary = shop.run(shop.request("task-all", as_of=AS_OF))
    assert summary.succeeded
    assert all(105 not in t for t in ids(shop).values())
    cleared = next(t for t in summary.tags if t.tag_id == 105)
    assert (cleared.status, cleared.removed) == ("cleared", len(had_105))
    only_105 = [u for u in had_105 if ids(shop).get(u) == []]
    assert only_105, "a row whose set becomes empty is kept with []"


def test_user_gone_from_lake_loses_scope_tags(shop: TagSystemAPI, shop_lake: Path) -> None:
    shop.run(shop.request("task-all", as_of=AS_OF))
    engine = create_store_engine(shop.db_url)
    with engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(
            text(
                "INSERT INTO user_tags (user_id, tag_ids, tag_details, created_time, updated_time) "
                "VALUES ('ghost', '[101,999]', '{}', '2020-01-01 00:00:00', '2020-01-01 00:00:00')"
            )
        )
    engine.dispose()
    shop.run(shop.request("task-tags", tag_ids=[101], as_of=AS_OF))
    assert ids(shop)["ghost"] == [999]
    shop.run(shop.request("task-all", as_of=AS_OF))
    assert ids(shop)["ghost"] == []


def test_dry_run_writes_nothing(shop: TagSystemAPI, shop_lake: Path) -> None:
    summary = shop.run(shop.request("task-all", as_of=AS_OF, dry_run=True))
    expected = {u for u, t in expected_tags(shop_lake, SHOP_TAGS, AS_OF).items() if t}
    assert summary.rows_inserted == len(expected)
    assert ids(shop) == {}


def test_duplicate_user_ids_stop_the_run(shop: TagSystemAPI, shop_lake: Path) -> None:
    dup = [{"user_id": "u0002", "amount": 1.0, "last_order": None, "channel": "app"}] * 2
    write_table(shop_lake, "orders", dup, ORDERS, "dt=2024-06-30")
    with pytest.raises(DataError, match=r"orders.*u0002"):
        shop.run(shop.request("task-all", as_of=AS_OF))
    assert ids(shop) == {}


def test_unknown_tag_id_is_a_usage_error(shop: TagSystemAPI) -> None:
    with pytest.raises(UsageError, match="999"):
        shop.run(shop.request("task-tags", tag_ids=[999], as_of=AS_OF))


def _customer(uid: str | None, age: int) -> dict[str, object]:
    return {"user_id": uid, "age": age, "city": "x", "vip": False, "joined": AS_OF}


@pytest.mark.parametrize("nulls", [1, 2])
def test_rows_without_a_user_id_are_skipped(
    make_api, sqlite_url: str, tmp_path: Path, nulls: int
) -> None:
    """A lake row without a user id belongs to no one: no row for it, not counted as a user,
    and two of them are not a duplicate user."""
    lake = tmp_path / "lake"
    rows = [_customer("u1", 30)] + [_customer(None, 40 + n) for n in range(nulls)]
    write_table(lake, "customers", rows, CUSTOMERS)
    load_tags(sqlite_url, ADULT)
    api: TagSystemAPI = make_api(sqlite_url, lake)
    summary = api.run(api.request("task-all", as_of=AS_OF))
    assert summary.succeeded, summary.render()
    assert (summary.users_evaluated, summary.rows_inserted) == (1, 1)
    assert ids(api) == {"u1": [201]}


INT_USERS = pa.schema([("user_id", pa.int64()), ("age", pa.int32())])


def test_integer_user_ids_are_text_next_to_a_non_numeric_existing_row(
    make_api, sqlite_url: str, tmp_path: Path
) -> None:
    """User ids are compared as text: a BIGINT-keyed lake works beside a stored row whose id
    is not a number; that row (not in the lake) loses the run's tags on all-user and listed
    runs."""
    lake = tmp_path / "lake"
    write_table(
        lake, "customers", [{"user_id": 1, "age": 30}, {"user_id": 2, "age": 10}], INT_USERS
    )
    load_tags(sqlite_url, ADULT)
    engine = create_store_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_tags (user_id, tag_ids, tag_details, created_time, updated_time)"
                " VALUES ('legacy-x', '[201]', '{}', '2020-01-01 00:00:00', '2020-01-01 00:00:00')"
            )
        )
    engine.dispose()
    api: TagSystemAPI = make_api(sqlite_url, lake)
    summary = api.run(api.request("task-all", as_of=AS_OF))
    assert summary.succeeded, summary.render()
    assert ids(api) == {"1": [201], "legacy-x": []}
    summary = api.run(api.request("task-users", user_ids=["1", "2", "legacy-x"], as_of=AS_OF))
    assert summary.succeeded, summary.render()
    assert ids(api) == {"1": [201], "legacy-x": []}
    assert (summary.rows_inserted, summary.rows_updated) == (0, 0)


def test_task_tags_summary_has_every_requested_tag_with_status_and_counts(
    make_api, sqlite_url: str, shop_lake: Path
) -> None:
    """task-tags 101,105 with 105 inactive: 101 is `ok` with its matches, all added on an
    empty store; 105 is `cleared` with nothing matched, added or removed."""
    load_tags(sqlite_url, SHOP_TAGS)
    engine = create_store_engine(sqlite_url)
    repository.upsert_tag(
        bind=engine, tag_id=105, tag_name="no orders", tag_category="activity", is_active=False
    )
    engine.dispose()
    api: TagSystemAPI = make_api(sqlite_url, shop_lake)
    summary = api.run(api.request("task-tags", tag_ids=[101, 105], as_of=AS_OF))
    holders = sum(101 in t for t in expected_tags(shop_lake, SHOP_TAGS, AS_OF).values())
    outcomes = {t.tag_id: (t.status, t.matched, t.added, t.removed) for t in summary.tags}
    assert outcomes == {101: ("ok", holders, holders, 0), 105: ("cleared", 0, 0, 0)}
    assert summary.rows_inserted == holders


def test_task_users_listed_user_with_a_row_who_left_the_lake(
    shop: TagSystemAPI, shop_lake: Path
) -> None:
    """A listed user in no lake table loses the tags of S (not the others); the row stays."""
    engine = create_store_engine(shop.db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_tags (user_id, tag_ids, tag_details, created_time, updated_time)"
                " VALUES ('ghost', '[101,103,999]', '{}', '2020-01-01 00:00:00',"
                " '2020-01-01 00:00:00')"
            )
        )
    engine.dispose()
    summary = shop.run(
        shop.request("task-users", user_ids=["ghost", "u0003"], tag_ids=[101], as_of=AS_OF)
    )
    assert summary.succeeded, summary.render()
    computed = expected_tags(shop_lake, {101: SHOP_TAGS[101]}, AS_OF)
    want = {"ghost": [103, 999]} | ({"u0003": [101]} if computed.get("u0003") else {})
    assert ids(shop) == want
    assert (summary.users_evaluated, summary.rows_updated) == (2, 1)
    assert next(t for t in summary.tags if t.tag_id == 101).removed == 1


AMOUNTS = pa.schema([("user_id", pa.string()), ("amount", pa.float64())])
NAN_TAGS: dict[int, tuple[str, str, list[dict[str, Any]]]] = {
    301: (
        "big",
        "value",
        [{"logic": "AND", "conditions": [{"field": "amount", "operator": ">", "value": 1000}]}],
    ),
    302: (
        "no amount",
        "value",
        [{"logic": "AND", "conditions": [{"field": "amount", "operator": "is_null"}]}],
    ),
    303: (
        "not big",
        "value",
        [{"logic": "NOT", "conditions": [{"field": "amount", "operator": ">", "value": 1000}]}],
    ),
}


def test_nan_in_a_double_column_is_a_missing_value_in_runs_and_explain(
    make_api, sqlite_url: str, tmp_path: Path
) -> None:
    """Pandas writes a missing number as NaN; Spark alone would rank it above 1000."""
    lake = tmp_path / "lake"
    rows = [
        {"user_id": "nan", "amount": float("nan")},
        {"user_id": "null", "amount": None},
        {"user_id": "rich", "amount": 6000.0},
    ]
    write_table(lake, "orders", rows, AMOUNTS)
    load_tags(sqlite_url, NAN_TAGS)
    api: TagSystemAPI = make_api(sqlite_url, lake)
    summary = api.run(api.request("task-all", as_of=AS_OF))
    assert summary.succeeded, summary.render()
    assert ids(api) == {"nan": [302, 303], "null": [302, 303], "rich": [301]}
    explained = api.explain_tag(301, "nan", AS_OF).to_dict()
    assert explained["applies"] is False
    assert explained["rules"][0]["root"]["children"][0]["actual"] is None
    assert api.explain_tag(303, "nan", AS_OF).applies is True
