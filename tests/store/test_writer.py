from __future__ import annotations

import hashlib
import pickle
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pymysql
import pytest
import sqlalchemy as sa

from tagsys.errors import StoreError
from tagsys.store import writer
from tagsys.store.adapters import EXISTING_ROWS_SCHEMA
from tagsys.store.db import engine_adapter
from tagsys.store.repository import read_user_tags
from tagsys.store.writer import WriteCounts, write_rows
from tagsys.tagsets import TagScope

from .support import DEFINITIONS, T1, T2, T3, request_for


def _put(url: str, rows: dict[str, list[int]], at: datetime = T1) -> WriteCounts:
    return write_rows(request_for(url, written_at=at), rows.items())


def _state(engine: sa.Engine) -> dict[str, list[int]]:
    return {uid: row.tag_ids for uid, row in read_user_tags(bind=engine).items()}


def test_first_write_inserts_rows_with_details_and_timestamps(
    migrated_url: str, engine: sa.Engine
) -> None:
    counts = _put(migrated_url, {"u2": [3, 1], "u1": [2]})

    assert counts == WriteCounts(inserted=2, updated=0, unchanged=0)
    rows = read_user_tags(bind=engine, user_ids=["u1", "u2"])
    assert rows["u2"].tag_ids == [1, 3]
    assert rows["u2"].tag_details == {
        1: {"tag_name": "高净值用户", "tag_category": "财富"},
        3: {"tag_name": "年轻用户", "tag_category": "人口"},
    }
    assert rows["u1"].created_time == rows["u1"].updated_time == T1


def test_stored_json_is_canonical_text_with_readable_chinese(
    migrated_url: str, engine: sa.Engine
) -> None:
    _put(migrated_url, {"u1": [2, 1]})

    with engine.connect() as conn:
        ids, details = conn.execute(sa.text("SELECT tag_ids, tag_details FROM user_tags")).one()
    assert ids == "[1,2]"
    assert details == (
        '{"1":{"tag_name":"高净值用户","tag_category":"财富"},'
        '"2":{"tag_name":"VIP客户","tag_category":"价值"}}'
    )


def test_unchanged_rerun_writes_nothing_and_keeps_updated_time(
    migrated_url: str, engine: sa.Engine
) -> None:
    _put(migrated_url, {"u1": [1, 2], "u2": [3]}, at=T1)

    counts = _put(migrated_url, {"u1": [2, 1], "u2": [3]}, at=T2)

    assert counts == WriteCounts(inserted=0, updated=0, unchanged=2)
    rows = read_user_tags(bind=engine)
    assert {r.updated_time for r in rows.values()} == {T1}


def test_changed_content_moves_updated_time_but_not_created_time(
    migrated_url: str, engine: sa.Engine
) -> None:
    _put(migrated_url, {"u1": [1], "u2": [3]}, at=T1)

    counts = _put(migrated_url, {"u1": [1, 2], "u2": [3]}, at=T2)

    assert counts == WriteCounts(inserted=0, updated=1, unchanged=1)
    rows = read_user_tags(bind=engine)
    assert (rows["u1"].created_time, rows["u1"].updated_time) == (T1, T2)
    assert (rows["u2"].created_time, rows["u2"].updated_time) == (T1, T1)


def test_written_at_in_another_zone_is_stored_as_utc(migrated_url: str, engine: sa.Engine) -> None:
    shanghai = T1.astimezone(timezone(timedelta(hours=8)))

    _put(migrated_url, {"u1": [1]}, at=shanghai)

    assert read_user_tags(bind=engine)["u1"].created_time == T1


def test_no_row_for_a_new_user_without_tags(migrated_url: str, engine: sa.Engine) -> None:
    counts = _put(migrated_url, {"nobody": [], "somebody": [4]})

    assert counts == WriteCounts(inserted=1, updated=0, unchanged=1)
    assert _state(engine) == {"somebody": [4]}


def test_a_row_that_becomes_empty_is_kept_as_an_empty_array(
    migrated_url: str, engine: sa.Engine
) -> None:
    _put(migrated_url, {"u1": [4]}, at=T1)

    counts = _put(migrated_url, {"u1": []}, at=T2)

    assert counts == WriteCounts(updated=1)
    row = read_user_tags(bind=engine)["u1"]
    assert (row.tag_ids, row.tag_details, row.updated_time) == ([], {}, T2)


def test_tags_outside_the_scope_keep_their_ids_and_old_details(
    migrated_url: str, engine: sa.Engine
) -> None:
    _put(migrated_url, {"u1": [1, 2, 5]}, at=T1)
    with engine.begin() as conn:  # a detail written by an older definition of tag 5
        conn.execute(
            sa.text("UPDATE user_tags SET tag_details = :d"),
            {
                "d": '{"1":{"tag_name":"a","tag_category":"b"},"2":{"tag_name":"c","tag_category":"d"},'
                '"5":{"tag_name":"旧名字","tag_category":"旧分类","since":"2025"}}'
            },
        )

    request = request_for(migrated_url, scope=TagScope(frozenset({1, 3})), written_at=T2)
    counts = write_rows(request, [("u1", [3, 5, 8]), ("u2", [1, 8])])

    assert counts == WriteCounts(inserted=1, updated=1)
    rows = read_user_tags(bind=engine)
    assert rows["u1"].tag_ids == [2, 3, 5]
    assert rows["u1"].tag_details[5] == {
        "tag_name": "旧名字",
        "tag_category": "旧分类",
        "since": "2025",
    }
    assert rows["u1"].tag_details[2] == {"tag_name": "c", "tag_category": "d"}
    assert rows["u1"].tag_details[3] == DEFINITIONS[3].as_detail()
    assert rows["u2"].tag_ids == [1]


def test_failed_tags_are_left_untouched(migrated_url: str, engine: sa.Engine) -> None:
    _put(migrated_url, {"u1": [1, 2]}, at=T1)
    scope = TagScope(frozenset({1, 2})).with_failed([2])

    write_rows(request_for(migrated_url, scope=scope, written_at=T2), [("u1", [])])

    assert _state(engine) == {"u1": [2]}


def test_all_tags_scope_removes_unknown_and_deleted_tag_ids(
    migrated_url: str, engine: sa.Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO user_tags (user_id, tag_ids, tag_details) VALUES (:u, :i, :d)"),
            [
                {"u": "u1", "i": "[1,99]", "d": None},
                {"u": "u2", "i": "[99]", "d": None},
            ],
        )

    counts = write_rows(request_for(migrated_url, written_at=T2), [("u1", [1]), ("u2", [])])

    assert counts == WriteCounts(updated=2)
    assert _state(engine) == {"u1": [1], "u2": []}


def test_a_legacy_row_without_details_gets_them(migrated_url: str, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_tags (user_id, tag_ids) VALUES ('u1', '[1]')"))

    counts = _put(migrated_url, {"u1": [1]}, at=T2)

    assert counts == WriteCounts(updated=1)
    assert read_user_tags(bind=engine)["u1"].tag_details == {1: DEFINITIONS[1].as_detail()}


def test_small_batches_and_repeated_users(migrated_url: str, engine: sa.Engine) -> None:
    rows = [(f"u{i:03d}", [1 + i % 8]) for i in reversed(range(50))]
    rows.insert(rows.index(("u010", [3])) + 1, ("u010", [8]))  # a repeat within one batch

    counts = write_rows(request_for(migrated_url, batch_size=7), rows)

    assert counts.inserted == 50
    state = _state(engine)
    assert len(state) == 50
    assert state["u010"] == [3, 8]


def test_ids_that_differ_only_in_case_or_script_are_different_users(
    migrated_url: str, engine: sa.Engine
) -> None:
    counts = _put(migrated_url, {"abc": [1], "ABC": [2], "用户甲": [3], "ａbc": [4]})

    assert counts.inserted == 4
    assert _state(engine) == {"abc": [1], "ABC": [2], "用户甲": [3], "ａbc": [4]}


def test_the_upsert_guard_keeps_updated_time_for_identical_content(
    migrated_url: str, engine: sa.Engine
) -> None:
    """The SQL itself, not only the planner, must not move updated_time (assignment order)."""
    adapter = engine_adapter(engine)
    stamp1, stamp2, stamp3 = (adapter.timestamp_param(t) for t in (T1, T2, T3))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.executemany(adapter.UPSERT_SQL, [("u1", "[1]", "{}", stamp1, stamp1)])
        cursor.executemany(adapter.UPSERT_SQL, [("u1", "[1]", "{}", stamp2, stamp2)])
        raw.commit()
        assert read_user_tags(bind=engine)["u1"].updated_time == T1
        cursor.executemany(adapter.UPSERT_SQL, [("u1", "[1,2]", "{}", stamp3, stamp3)])
        raw.commit()
    finally:
        raw.close()
    row = read_user_tags(bind=engine)["u1"]
    assert (row.tag_ids, row.created_time, row.updated_time) == ([1, 2], T1, T3)


def test_write_request_is_picklable(migrated_url: str) -> None:
    request = request_for(migrated_url, scope=TagScope(frozenset({1})).with_failed([2]))

    assert pickle.loads(pickle.dumps(request)) == request


def _lock_error(url: str) -> Exception:
    if url.startswith("sqlite"):
        return sqlite3.OperationalError("database is locked")
    return pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")


def test_a_transient_lock_error_retries_the_whole_batch(
    migrated_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = [_lock_error(migrated_url)]
    real_plan = writer.plan_batch

    def flaky_plan(*args: object, **kwargs: object) -> writer.BatchPlan:
        if failures:
            raise failures.pop()
        return real_plan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "plan_batch", flaky_plan)
    monkeypatch.setattr(writer.time, "sleep", lambda _: None)

    counts = _put(migrated_url, {"u1": [1], "u2": [2]})

    assert counts == WriteCounts(inserted=2)
    assert _state(engine) == {"u1": [1], "u2": [2]}


def test_lock_errors_give_up_after_max_attempts(
    migrated_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def always_locked(*args: object, **kwargs: object) -> writer.BatchPlan:
        calls.append(1)
        raise _lock_error(migrated_url)

    monkeypatch.setattr(writer, "plan_batch", always_locked)
    monkeypatch.setattr(writer.time, "sleep", lambda _: None)

    with pytest.raises(StoreError, match="after 3 attempts"):
        write_rows(request_for(migrated_url, max_attempts=3), [("u1", [1])])
    assert len(calls) == 3
    assert _state(engine) == {}


def test_a_statement_error_is_not_retried(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken(*args: object, **kwargs: object) -> writer.BatchPlan:
        calls.append(1)
        raise sqlite3.IntegrityError("boom")

    monkeypatch.setattr(writer, "plan_batch", broken)

    with pytest.raises(StoreError, match="boom"):
        _put(migrated_url, {"u1": [1]})
    assert len(calls) == 1


def test_malformed_stored_json_names_the_user(migrated_url: str, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO user_tags (user_id, tag_ids) VALUES ('u9', :ids)"),
            {"ids": '["x"]'},
        )

    with pytest.raises(StoreError, match="'u9'"):
        _put(migrated_url, {"u9": [1]})


@pytest.mark.parametrize("detail", ['"x"', "null", "[1]"])
def test_a_kept_detail_that_is_not_an_object_names_the_user(
    migrated_url: str, engine: sa.Engine, detail: str
) -> None:
    """A tag outside the run's scope keeps its stored detail, which must then be an object;
    a tag in scope gets its definition, so the same row is simply repaired."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO user_tags (user_id, tag_ids, tag_details) VALUES ('u8', :i, :d)"),
            {"i": "[1]", "d": '{"1": ' + detail + "}"},
        )
    only_2 = request_for(migrated_url, scope=TagScope(tag_ids=frozenset({2})))

    with pytest.raises(StoreError, match=r"user 'u8' holds malformed JSON \(the detail of tag 1"):
        write_rows(only_2, [("u8", [2])])
    assert read_user_tags(bind=engine)["u8"].tag_ids == [1]

    assert _put(migrated_url, {"u8": [1, 2]}) == WriteCounts(inserted=0, updated=1, unchanged=0)
    assert read_user_tags(bind=engine)["u8"].tag_details[1] == DEFINITIONS[1].as_detail()


def test_partitions_read_back_by_id_range(migrated_url: str) -> None:
    assert writer.id_bounds(migrated_url) is None
    empty = writer.read_existing_partition(migrated_url, 0, 100)
    assert empty.num_rows == 0
    assert empty.schema == EXISTING_ROWS_SCHEMA

    _put(migrated_url, {f"u{i}": [1 + i % 3] for i in range(10)})
    low, high = writer.id_bounds(migrated_url) or (0, 0)
    middle = (low + high) // 2
    first = writer.read_existing_partition(migrated_url, low, middle)
    second = writer.read_existing_partition(migrated_url, middle + 1, high)
    some = writer.read_existing_partition(migrated_url, low, high, ["u3", "u4", "ghost"])

    assert high - low == 9
    together = pa.Table.from_batches([first, second])
    assert sorted(together.column("user_id").to_pylist()) == sorted(f"u{i}" for i in range(10))
    # The details come back as the SHA-1 of the stored text (the database's own on MySQL).
    assert some.to_pylist() == [
        {
            "user_id": "u3",
            "tag_ids": "[1]",
            "details_digest": _sha1('{"1":{"tag_name":"高净值用户","tag_category":"财富"}}'),
        },
        {
            "user_id": "u4",
            "tag_ids": "[2]",
            "details_digest": _sha1('{"2":{"tag_name":"VIP客户","tag_category":"价值"}}'),
        },
    ]
    assert writer.read_existing_partition(migrated_url, low, high, []).num_rows == 0


def test_sqlite_allows_one_writer_and_mysql_no_limit_of_ours(migrated_url: str) -> None:
    expected = 1 if migrated_url.startswith("sqlite") else None
    assert writer.max_concurrent_writers(migrated_url) == expected


def test_written_at_default_zone_matters_not(migrated_url: str, engine: sa.Engine) -> None:
    naive_utc = datetime(2026, 1, 1, 8, 0, 0, 123456)

    _put(migrated_url, {"u1": [1]}, at=naive_utc)

    assert read_user_tags(bind=engine)["u1"].created_time == naive_utc.replace(tzinfo=UTC)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_a_user_seen_twice_gets_the_union_whatever_the_batch_size(
    migrated_url: str, engine: sa.Engine, batch_size: int
) -> None:
    """Two rows of one user in one write are one user: the union of their tags, wherever
    the batch boundary falls between them."""
    rows = [("a", [1]), ("b", [2]), ("b", [3])]
    write_rows(request_for(migrated_url, batch_size=batch_size), rows)
    writer.dispose_engines()
    assert _state(engine) == {"a": [1], "b": [2, 3]}
