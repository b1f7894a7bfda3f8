"""Review findings (null and integer user ids, own-job task inputs, time zones, summaries, writer batches): each failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tagsys.api import TagSystemAPI
from tagsys.errors import DataError
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.tasks.base import BaseTagTask
from tagsys.tasks.registry import default_registry
from tests.engine.lakes import AS_OF, CUSTOMERS, SHOP_TAGS, expected_tags, load_tags, write_table


def ids(db_url: str) -> dict[str, list[int]]:
    engine = create_store_engine(db_url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


ADULT = {
    201: (
        "adult",
        "people",
        [{"logic": "AND", "conditions": [{"field": "age", "operator": ">=", "value": 18}]}],
    )
}


def _customer(uid: str | None, age: int) -> dict:
    return {"user_id": uid, "age": age, "city": "x", "vip": False, "joined": AS_OF}


# --- 1. null user ids ------------------------------------------------------------------------


def test_null_user_id_in_the_lake_creates_no_row(make_api, sqlite_url: str, tmp_path: Path) -> None:
    """A lake row with a null user id is not a user: no `user_tags` row 'None' may appear."""
    lake = tmp_path / "lake"
    write_table(lake, "customers", [_customer("u1", 30), _customer(None, 40)], CUSTOMERS)
    load_tags(sqlite_url, ADULT)
    api: TagSystemAPI = make_api(sqlite_url, lake)
    api.run(api.request("task-all", as_of=AS_OF))
    assert ids(sqlite_url) == {"u1": [201]}


def test_two_null_user_ids_do_not_crash_the_duplicate_report(
    make_api, sqlite_url: str, tmp_path: Path
) -> None:
    """Two rows with a null user id: the run either ignores them or raises a DataError;
    today the duplicate report joins None into a string and dies with a TypeError."""
    lake = tmp_path / "lake"
    rows = [_customer("u1", 30), _customer(None, 40), _customer(None, 50)]
    write_table(lake, "customers", rows, CUSTOMERS)
    load_tags(sqlite_url, ADULT)
    api: TagSystemAPI = make_api(sqlite_url, lake)
    try:
        api.run(api.request("task-all", as_of=AS_OF))
    except DataError:
        return
    assert "None" not in ids(sqlite_url)


# --- 2. tasks with their own job ---------------------------------------------------------------


def test_own_job_task_sees_users_missing_from_its_primary_source(
    make_api, sqlite_url: str, shop_lake: Path
) -> None:
    """A task class whose hooks change nothing must tag exactly the users its rule holds for.

    Tag 105 is `amount is_null`; users absent from `orders` have a null amount (SPEC 3: "A user
    missing from a table has nulls for its columns"). As its own job, the task's input starts
    from its primary table, so those users are never evaluated.
    """

    class NoOrdersTask(BaseTagTask):
        tag_id = 105
        domain = "review"
        data_sources = {"primary": "orders", "secondary": "customers"}  # noqa: RUF012

        def post_process_result(self, tagged_users):  # type: ignore[no-untyped-def]
            return tagged_users  # same result, but forces the own-job path

    tags = {105: SHOP_TAGS[105]}
    load_tags(sqlite_url, tags)
    try:
        api: TagSystemAPI = make_api(sqlite_url, shop_lake)
        summary = api.run(api.request("task-all", as_of=AS_OF))
        assert summary.succeeded, summary.render()
    finally:
        default_registry.unregister(105)
    expected = {u: sorted(t) for u, t in expected_tags(shop_lake, tags, AS_OF).items() if t}
    got = ids(sqlite_url)
    missing = sorted(set(expected) - set(got))
    assert got == expected, f"users the rule holds for but never tagged: {missing[:5]}"


TWO_CHANNELS = pa.schema([("user_id", pa.string()), ("channel", pa.string())])


def test_own_job_task_reads_a_qualified_field_from_the_named_table(
    make_api, sqlite_url: str, tmp_path: Path
) -> None:
    """`b.channel` must read table b even when the task's first source `a` also has `channel`.

    `_task_input` keeps only the first table's `channel` and then evaluates the rule's
    `b__channel` alias on it.
    """
    lake = tmp_path / "lake"
    write_table(
        lake,
        "a",
        [{"user_id": "u1", "channel": "x"}, {"user_id": "u2", "channel": "y"}],
        TWO_CHANNELS,
    )
    write_table(
        lake,
        "b",
        [{"user_id": "u1", "channel": "y"}, {"user_id": "u2", "channel": "x"}],
        TWO_CHANNELS,
    )
    rule = {"logic": "AND", "conditions": [{"field": "b.channel", "operator": "=", "value": "x"}]}
    load_tags(sqlite_url, {202: ("b is x", "t", [rule])})

    class ChannelTask(BaseTagTask):
        tag_id = 202
        domain = "review"
        data_sources = {"primary": "a", "secondary": "b"}  # noqa: RUF012

        def preprocess_data(self, raw_data):  # type: ignore[no-untyped-def]
            return raw_data

    try:
        api: TagSystemAPI = make_api(sqlite_url, lake)
        summary = api.run(api.request("task-all", as_of=AS_OF))
        assert summary.succeeded, summary.render()
    finally:
        default_registry.unregister(202)
    assert ids(sqlite_url) == {"u2": [202]}


# --- 3. writer batches --------------------------------------------------------------------------


def test_writer_result_does_not_depend_on_batch_size_for_a_repeated_user(sqlite_url: str) -> None:
    """`_batches` unions the tags of a user seen twice inside one batch, but when the two
    occurrences fall into different batches the second batch's merge removes the first's
    scope tags: the outcome depends on where the batch boundary falls."""
    from datetime import UTC, datetime

    from tagsys.store import migrate, writer
    from tagsys.tagsets import TagInfo, TagScope

    migrate.upgrade(sqlite_url)
    rows = [("a", [1]), ("b", [2]), ("b", [3])]
    defs = {t: TagInfo(f"t{t}", "c") for t in (1, 2, 3)}

    def run(size: int) -> list[int]:
        engine = create_store_engine(sqlite_url)
        with engine.begin() as conn:
            import sqlalchemy as sa

            conn.execute(sa.text("DELETE FROM user_tags"))
        engine.dispose()
        request = writer.WriteRequest(
            sqlite_url, TagScope(all_tags=True), defs, datetime.now(UTC), batch_size=size
        )
        writer.write_rows(request, rows)
        writer.dispose_engines()
        return ids(sqlite_url)["b"]

    assert run(100) == run(2)


# --- 4. time zone of timestamp columns ----------------------------------------------------------

SEEN = pa.schema(
    [("user_id", pa.string()), ("age", pa.int32()), ("seen_at", pa.timestamp("us", tz="UTC"))]
)


def test_change_column_timestamp_is_dated_in_the_configured_time_zone(
    make_api, sqlite_url: str, tmp_path: Path
) -> None:
    """as_of is a business date in `timezone` (Asia/Shanghai here); a row changed at
    2024-06-30 01:30 Shanghai time changed on 2024-06-30. The Spark session is pinned to UTC
    (`tagsys.spark.ENGINE_CONF`), so `to_date` dates it 2024-06-29 and the user is skipped."""
    from datetime import UTC, datetime

    lake = tmp_path / "lake"
    rows = [{"user_id": "u1", "age": 30, "seen_at": datetime(2024, 6, 29, 17, 30, tzinfo=UTC)}]
    write_table(lake, "customers", rows, SEEN)
    load_tags(sqlite_url, ADULT)
    api: TagSystemAPI = make_api(
        sqlite_url, lake, timezone="Asia/Shanghai", change_columns={"customers": "seen_at"}
    )
    summary = api.run(api.request("incremental", days=0, as_of=AS_OF))
    assert summary.succeeded, summary.render()
    assert ids(sqlite_url) == {"u1": [201]}


# --- 5. summary ---------------------------------------------------------------------------------


def test_task_tags_summary_lists_every_requested_tag(
    make_api, sqlite_url: str, shop_lake: Path
) -> None:
    """task-tags --tag-ids 101,105 with 105 inactive and held by no one: the summary says
    nothing at all of 105 (it appears only when it removed something)."""
    load_tags(sqlite_url, SHOP_TAGS)
    engine = create_store_engine(sqlite_url)
    repository.upsert_tag(
        bind=engine, tag_id=105, tag_name="no orders", tag_category="activity", is_active=False
    )
    engine.dispose()
    api: TagSystemAPI = make_api(sqlite_url, shop_lake)
    summary = api.run(api.request("task-tags", tag_ids=[101, 105], as_of=AS_OF))
    assert {t.tag_id for t in summary.tags} == {101, 105}


# --- 6. integer user ids ------------------------------------------------------------------------

INT_USERS = pa.schema([("user_id", pa.int64()), ("age", pa.int32())])


def test_integer_user_ids_with_a_non_numeric_existing_row(
    make_api, sqlite_url: str, tmp_path: Path
) -> None:
    """A lake keyed by BIGINT user ids next to a user_tags row whose id is not numeric."""
    import sqlalchemy as sa

    lake = tmp_path / "lake"
    write_table(
        lake, "customers", [{"user_id": 1, "age": 30}, {"user_id": 2, "age": 10}], INT_USERS
    )
    load_tags(sqlite_url, ADULT)
    engine = create_store_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO user_tags (user_id, tag_ids, tag_details, created_time, updated_time)"
                " VALUES ('legacy-x', '[201]', '{}', '2020-01-01 00:00:00', '2020-01-01 00:00:00')"
            )
        )
    engine.dispose()
    api: TagSystemAPI = make_api(sqlite_url, lake)
    summary = api.run(api.request("task-all", as_of=AS_OF))
    assert summary.succeeded, summary.render()
    assert ids(sqlite_url) == {"1": [201], "legacy-x": []}
    summary = api.run(api.request("task-users", user_ids=["1", "2", "legacy-x"], as_of=AS_OF))
    assert summary.succeeded, summary.render()
    assert ids(sqlite_url) == {"1": [201], "legacy-x": []}
