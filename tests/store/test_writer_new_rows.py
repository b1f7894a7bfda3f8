"""The insert path for users without a row: no locking reads, and safe when a row appears."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
import sqlalchemy as sa

from tagsys.errors import StoreError
from tagsys.store import repository
from tagsys.store.adapters import MySQLAdapter
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tagsys.store.writer import (
    NEW_ROW_COLUMNS,
    NEW_ROWS_SCHEMA,
    WriteCounts,
    WriteRequest,
    prepare_new_rows,
    write_new_rows,
    write_partition,
    write_rows,
)
from tagsys.tagsets import TagInfo, TagScope, details_json

DEFS = {1: TagInfo("one", "c"), 2: TagInfo("two", "c"), 3: TagInfo("three", "c")}


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def url(request: pytest.FixtureRequest) -> str:
    db_url = request.getfixturevalue(f"{request.param}_url")
    upgrade(db_url)
    return db_url


def request_for(url: str, scope: TagScope) -> WriteRequest:
    return WriteRequest(url, scope, DEFS, datetime.now(UTC), batch_size=3)


def stored(url: str) -> dict[str, list[int]]:
    engine = create_store_engine(url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


def test_new_rows_are_inserted_and_empty_ones_skipped(url: str) -> None:
    rows = [("a", [1]), ("b", []), ("c", [2, 1]), ("d", [3])]
    counts = write_new_rows(request_for(url, TagScope(all_tags=True)), rows)
    assert counts == WriteCounts(inserted=3, updated=0, unchanged=1)
    assert stored(url) == {"a": [1], "c": [1, 2], "d": [3]}


def test_a_row_that_exists_after_all_is_merged_not_overwritten(url: str) -> None:
    write_rows(request_for(url, TagScope(frozenset({3}))), [("b", [3])])
    counts = write_new_rows(request_for(url, TagScope(frozenset({1, 2}))), [("a", [1]), ("b", [2])])
    assert stored(url) == {"a": [1], "b": [2, 3]}
    assert counts == WriteCounts(inserted=1, updated=1, unchanged=0)


TRICKY_DEFS = {1: TagInfo('say "hi", \\ bye', "财富"), 2: TagInfo("tab\there\nline", "c,d")}


def stored_text(url: str) -> dict[str, tuple[str, str, object, object]]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT user_id, tag_ids, tag_details, created_time, updated_time"
                    " FROM user_tags"
                )
            ).all()
    finally:
        engine.dispose()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def test_bulk_inserted_text_survives_quotes_commas_newlines_and_unicode(url: str) -> None:
    users = ['a,"b"', "c\nd", "e\\f", "用户"]
    request = WriteRequest(url, TagScope(all_tags=True), TRICKY_DEFS, datetime.now(UTC))
    counts = write_new_rows(request, [(u, [2, 1]) for u in users])

    assert counts == WriteCounts(inserted=4)
    rows = stored_text(url)
    expected = details_json({t: TRICKY_DEFS[t].as_detail() for t in (1, 2)})
    assert sorted(rows) == sorted(users)
    for tag_ids, details, created, updated in rows.values():
        assert (json.loads(tag_ids), details) == ([1, 2], expected)
        assert created == updated


def test_partition_inserts_prepared_rows_and_merges_the_others(url: str) -> None:
    write_rows(request_for(url, TagScope(all_tags=True)), [("old", [3])])
    prepared, _ = prepare_new_rows(request_for(url, TagScope(all_tags=True)), [("new", [1, 2])])
    others = pa.table(
        {"user_id": ["old"], "computed": [[1]], "tag_ids": [None], "tag_details": [None]},
        schema=NEW_ROWS_SCHEMA,
    )
    batches = [*pa.concat_tables([prepared, others]).to_batches(max_chunksize=1)]

    counts = write_partition(request_for(url, TagScope(frozenset({1, 2}))), batches)

    assert counts == WriteCounts(inserted=1, updated=1)
    assert stored(url) == {"new": [1, 2], "old": [1, 3]}


@pytest.mark.mariadb
def test_a_server_refusing_local_files_gets_plain_inserts(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pymysql

    upgrade(mariadb_url)
    monkeypatch.setattr(MySQLAdapter, "load_refused", False)
    prepared, _ = prepare_new_rows(request_for(mariadb_url, TagScope(all_tags=True)), [("a", [1])])
    url = sa.make_url(mariadb_url)
    conn = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        database=url.database,
        charset="utf8mb4",
        local_infile=False,
    )
    try:
        inserted = MySQLAdapter().insert_new_rows(
            conn.cursor(), prepared.select(NEW_ROW_COLUMNS), datetime(2026, 1, 1)
        )
        conn.commit()
    finally:
        conn.close()

    assert inserted == 1
    assert MySQLAdapter.load_refused
    assert stored(mariadb_url) == {"a": [1]}


@pytest.mark.mariadb
def test_a_user_id_too_long_for_the_column_fails_instead_of_being_cut(mariadb_url: str) -> None:
    upgrade(mariadb_url)
    rows = [("ok", [1]), ("x" * 150, [1])]

    with pytest.raises(StoreError, match="rolled back: 1265: Data truncated for column 'user_id'"):
        write_new_rows(request_for(mariadb_url, TagScope(all_tags=True)), rows)
    assert stored(mariadb_url) == {}


@pytest.mark.mariadb
def test_a_truncation_behind_many_duplicate_key_warnings_still_fails(mariadb_url: str) -> None:
    """The server lists at most max_error_count (64) warnings: a truncation after 100
    duplicate-key warnings is only visible in the warning count."""
    upgrade(mariadb_url)
    existing = [(f"a{i:03d}", [1]) for i in range(100)]
    write_new_rows(request_for(mariadb_url, TagScope(all_tags=True)), existing)
    rows = [*[(u, [2]) for u, _ in existing], ("z" * 150, [1])]

    with pytest.raises(StoreError, match="101 warnings for 100 rows skipped as existing"):
        write_new_rows(request_for(mariadb_url, TagScope(all_tags=True)), rows)
    assert stored(mariadb_url) == {u: ids for u, ids in existing}


def test_an_attempt_repeated_after_its_commit_counts_what_the_commit_wrote(url: str) -> None:
    """A connection that dies after COMMIT but before the reply makes the writer retry; the
    retry finds the rows as it wants them, stamped with the run's write time: they count as
    inserted/updated by this run, not as unchanged."""
    first = request_for(url, TagScope(all_tags=True))
    write_rows(first, [("a", [1])])
    request = request_for(url, TagScope(all_tags=True))
    rows = [("a", [1, 2]), ("b", [3]), ("c", [])]

    done = write_rows(request, rows)
    again = write_rows(request, rows)  # the same attempt once more, after its commit
    prepared = write_new_rows(request, [("b", [3])])

    assert done == WriteCounts(inserted=1, updated=1, unchanged=1)
    assert again == done
    assert prepared == WriteCounts(inserted=1, updated=0, unchanged=0)
    assert write_rows(request_for(url, TagScope(all_tags=True)), rows) == WriteCounts(0, 0, 3)
