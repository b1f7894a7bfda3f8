"""The index against the store, without Spark: rebuild, atomic publication, health, and
exports (local files and S3 on moto), on SQLite and MariaDB."""

from __future__ import annotations

import csv
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagsys.audiences import maintain
from tagsys.audiences.health import check
from tagsys.audiences.query import MAX_PAGE, Audiences
from tagsys.cli import main
from tagsys.errors import (
    AudienceError,
    ConflictError,
    NotFoundError,
    RunCancelled,
    TagSysError,
    UsageError,
)
from tagsys.history.retention import PruneResult, prune
from tagsys.store import audiences as store
from tagsys.store import repository, runs
from tagsys.store.db import create_store_engine, transaction
from tagsys.store.runs import RunRecord, insert_run
from tagsys.store.schema import tag_runs, user_tags
from tagsys.store.writer import WriteRequest, dispose_engines
from tagsys.store.writer import write_rows as write_rows_of_a_run
from tagsys.tagsets import TagInfo, TagScope
from tests.audiences.support import brute_force, expressions
from tests.engine.lakes import SHOP_TAGS, load_tags
from tests.store.support import start_run

NAMES = {name: tag_id for tag_id, (name, _, _) in SHOP_TAGS.items()}
EXPRESSION = {"and": [{"or": [101, 102]}, {"not": "not vip"}]}


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    url = request.getfixturevalue(f"{request.param}_url")
    load_tags(url, SHOP_TAGS)
    engine = create_store_engine(url)
    yield engine
    engine.dispose()


def rows_of(n: int, shift: int = 0) -> dict[str, set[int]]:
    tags = sorted(SHOP_TAGS)
    return {
        f"u{i:05d}": {t for j, t in enumerate(tags) if (i + shift) % (j + 2) == 0} for i in range(n)
    }


def write_rows(engine: sa.Engine, rows: dict[str, set[int]]) -> None:
    """user_tags as a run without a journal would leave it, and that run's record."""
    now = datetime.now(UTC)
    with transaction(engine) as conn:
        conn.execute(sa.delete(user_tags))
        if rows:
            conn.execute(
                sa.insert(user_tags),
                [
                    {
                        "user_id": u,
                        "tag_ids": sorted(t),
                        "tag_details": {},
                        "created_time": now,
                        "updated_time": now,
                    }
                    for u, t in rows.items()
                ],
            )
    record_run(engine, rows_written=None, journal="off")  # the old rows went too: unknown


def record_run(engine: sa.Engine, rows_written: int | None, journal: str) -> RunRecord:
    """A completed task-all run's record (what the index takes in)."""
    now = datetime.now(UTC)
    run = RunRecord(
        uuid.uuid4().hex,
        "task-all",
        date(2024, 6, 30),
        now,
        now,
        "completed",
        None,
        rows_written=rows_written,
        journal=journal,
    )
    insert_run(bind=engine, run=run)
    return run


def journaled_run(
    engine: sa.Engine,
    run_id: str,
    written: dict[str, set[int]],
    *,
    end: bool = True,
    started: bool = False,
    stamp: datetime | None = None,
) -> None:
    """A task-users run with a journal (recorded now unless `started`) that writes `written`
    (every tag in scope, at its write time `stamp`) and, with `end`, is recorded completed."""
    if not started:
        start_journaled(engine, run_id)
    defs = {t: TagInfo(name, "c") for t, (name, _, _) in SHOP_TAGS.items()}
    url = engine.url.render_as_string(hide_password=False)
    request = WriteRequest(
        url, TagScope(frozenset(SHOP_TAGS)), defs, stamp or datetime.now(UTC), run_id=run_id
    )
    write_rows_of_a_run(request, [(u, sorted(t)) for u, t in written.items()])
    if end:
        runs.finish_run(bind=engine, run_id=run_id, status="completed", rows_written=len(written))


def start_journaled(engine: sa.Engine, run_id: str) -> None:
    start_run(engine, run_id, mode="task-users")


def test_a_run_without_journal_rebuilds_and_counts_match(engine: sa.Engine) -> None:
    rows = rows_of(300)
    assert "user_tags is empty" in check(engine)
    write_rows(engine, rows)
    with pytest.raises(TagSysError, match="never been built"):
        check(engine)
    published = maintain.catch_up(engine)
    assert published is not None and published.rebuilt and published.users == 300
    assert "matches user_tags" in check(engine)
    audiences = Audiences(engine)
    assert audiences.count(EXPRESSION).count == len(brute_force(EXPRESSION, rows, NAMES))
    assert maintain.catch_up(engine) is None, "nothing new: nothing published"


def test_readers_see_the_old_index_until_the_publication_commits(engine: sa.Engine) -> None:
    before, after = rows_of(300), rows_of(250, shift=1)
    write_rows(engine, before)
    maintain.catch_up(engine)
    audiences = Audiences(engine)
    old = audiences.count(EXPRESSION)
    write_rows(engine, after)
    want = len(brute_force(EXPRESSION, after, NAMES))
    assert want != old.count

    with engine.connect() as conn, conn.begin():
        state = store.lock_state(conn)
        maintain._rebuild(conn, state, 0.0, False)  # published inside this open transaction
        seen: list[tuple[int, int]] = []
        reader = threading.Thread(target=lambda: seen.append(_read(audiences)))
        reader.start()
        reader.join(30)
        assert seen == [(old.index.generation, old.count)], "the half-published index leaked"
    new = audiences.count(EXPRESSION)
    assert (new.index.generation, new.count) == (old.index.generation + 1, want)


def _read(audiences: Audiences) -> tuple[int, int]:
    result = audiences.count(EXPRESSION)
    return result.index.generation, result.count


def test_health_names_the_disagreement(engine: sa.Engine) -> None:
    write_rows(engine, rows_of(100))
    maintain.catch_up(engine)
    with transaction(engine) as conn:  # a write behind the index's back (no run record)
        conn.execute(sa.delete(user_tags).where(user_tags.c.user_id == "u00000"))
    with pytest.raises(
        TagSysError, match=r"disagrees with user_tags.*users with a row: index 100, user_tags 99"
    ):
        check(engine)
    maintain.rebuild(engine)
    assert "matches user_tags" in check(engine)


def test_saved_audiences_and_their_sizes(engine: sa.Engine) -> None:
    rows = rows_of(200)
    write_rows(engine, rows)
    maintain.catch_up(engine)
    audiences = Audiences(engine)
    saved = audiences.save("hnw", EXPRESSION, owner="ana", description="rich, not vip")
    assert (saved.name, saved.owner, saved.size) == ("hnw", "ana", None)
    with pytest.raises(ConflictError, match="exists already"):
        audiences.save("hnw", 101)
    with pytest.raises(UsageError, match="not one of"):
        audiences.save("count", 101)
    with pytest.raises(AudienceError, match="unknown tag id 7"):
        audiences.save("bad", {"and": [101, 7]})
    write_rows(engine, rows_of(150, shift=2))
    maintain.catch_up(engine)
    sizes = audiences.sizes("hnw")
    assert [s.size for s in sizes] == [len(brute_force(EXPRESSION, rows_of(150, shift=2), NAMES))]
    assert audiences.get("hnw").size == sizes[0].size
    audiences.update("hnw", expression=101)
    assert audiences.get("hnw").expression == 101
    big_spenders = sum(101 in t for t in rows_of(150, shift=2).values())
    assert big_spenders != sizes[0].size
    assert audiences.get("hnw").size == big_spenders  # not the old expression's size
    assert [s.size for s in audiences.sizes("hnw")] == [big_spenders]
    write_rows(engine, rows_of(150, shift=3))
    maintain.catch_up(engine)
    history = [s.size for s in audiences.sizes("hnw")]
    assert len(history) == 2
    audiences.update("hnw", expression=101, description="the same audience, sent again")
    assert [s.size for s in audiences.sizes("hnw")] == history
    audiences.delete("hnw")
    with pytest.raises(NotFoundError):
        audiences.get("hnw")


@pytest.mark.mariadb
def test_a_rebuild_does_not_block_the_writers_of_user_tags(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild's ids are assigned ahead, in a short transaction whose reads lock nothing:
    a run updating and inserting rows while the rebuild reads them waits for nothing (the
    INSERT ... SELECT inside the rebuild share-locked every row it scanned)."""
    load_tags(mariadb_url, SHOP_TAGS)
    engine = create_store_engine(mariadb_url)
    rows = rows_of(50)
    write_rows(engine, rows)
    maintain.catch_up(engine)  # the run without a journal is taken in: a reindex remains
    writer = create_store_engine(mariadb_url)
    membership = store.membership
    wrote: list[str] = []

    def write_meanwhile(conn: sa.Connection, run_ids: object) -> Iterator[object]:
        with writer.begin() as other:  # a run's batch, while the rebuild's transaction is open
            other.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 2")
            other.execute(
                sa.update(user_tags).where(user_tags.c.user_id == "u00001").values(tag_ids=[102])
            )
            other.execute(
                sa.insert(user_tags).values(
                    user_id="u99999",
                    tag_ids=[101],
                    tag_details={},
                    created_time=datetime.now(UTC),
                    updated_time=datetime.now(UTC),
                )
            )
        wrote.append("both")
        yield from membership(conn, run_ids)  # type: ignore[arg-type]

    monkeypatch.setattr(maintain.store, "membership", write_meanwhile)
    try:
        maintain.rebuild(engine)
        monkeypatch.setattr(maintain.store, "membership", membership)
        assert wrote == ["both"]
        # The rebuild read its snapshot: the writer's rows are the next run's to take in.
        assert Audiences(engine).count(EXPRESSION).count == len(
            brute_force(EXPRESSION, rows, NAMES)
        )
        maintain.rebuild(engine)
        assert "matches user_tags" in check(engine)
    finally:
        writer.dispose()
        engine.dispose()


def test_a_saved_audience_may_be_a_bare_tag_name_even_one_made_of_digits(
    engine: sa.Engine,
) -> None:
    """The expression is stored as JSON: the name "101" stays a name (not tag id 101), and a
    bare name neither breaks the listing nor stops the index's publications."""
    repository.upsert_tag(bind=engine, tag_id=150, tag_name="101", tag_category="value")
    rows = {**rows_of(50), "z1": {150}, "z2": {101, 150}}
    write_rows(engine, rows)
    maintain.catch_up(engine)
    audiences = Audiences(engine)
    assert audiences.save("digits", "101").expression == "101"
    assert audiences.save("spender", "big spender").expression == "big spender"
    assert {a.name: a.expression for a in audiences.saved()} == {
        "digits": "101",
        "spender": "big spender",
    }
    assert audiences.count(audiences.expression_of("digits")).count == 2
    write_rows(engine, {**rows, "z3": {150}})
    assert maintain.catch_up(engine) is not None
    assert [s.size for s in audiences.sizes("digits")] == [3]
    big_spenders = sum(101 in t for t in rows.values())
    assert [s.size for s in audiences.sizes("spender")] == [big_spenders]


def test_exports_write_whole_files_or_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    rows = rows_of(500)
    write_rows(engine, rows)
    maintain.catch_up(engine)
    audiences = Audiences(engine)
    want = brute_force(EXPRESSION, rows, NAMES)
    result = audiences.export(EXPRESSION, str(tmp_path / "a.parquet"))
    assert result.rows == len(want) and result.format == "parquet"
    assert set(pq.read_table(tmp_path / "a.parquet")["user_id"].to_pylist()) == want
    audiences.export(EXPRESSION, str(tmp_path / "a.txt"), "csv")
    with (tmp_path / "a.txt").open() as f:
        assert {r["user_id"] for r in csv.DictReader(f)} == want
    with pytest.raises(UsageError, match="does not exist"):
        audiences.export(EXPRESSION, str(tmp_path / "missing" / "a.csv"))
    with pytest.raises(UsageError, match="csv or parquet"):
        audiences.export(EXPRESSION, str(tmp_path / "a.json"))
    with pytest.raises(UsageError, match="cannot write there"):
        audiences.export(EXPRESSION, "/proc/tagsys-audience.csv")  # unwritable, even for root
    assert not list(tmp_path.glob(".*.part")) and not Path("/proc/tagsys-audience.csv").exists()


class StopAfter(threading.Event):
    """Set once the export has asked `calls` times (after that many chunks went out)."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    def is_set(self) -> bool:
        self.calls -= 1
        return self.calls < 0 or super().is_set()


def test_a_stopped_export_leaves_nothing_behind(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rows(engine, rows_of(500))
    maintain.catch_up(engine)
    audiences = Audiences(engine)
    monkeypatch.setattr("tagsys.audiences.query.EXPORT_CHUNK", 10)
    out = tmp_path / "exports"
    out.mkdir()
    for name in ("a.csv", "a.parquet"):
        stop = StopAfter(2)
        with pytest.raises(RunCancelled, match="cancelled"):
            audiences.export(EXPRESSION, str(out / name), stop=stop)
        assert stop.calls < 0  # it stopped midway, two chunks in
    assert not list(out.iterdir())


def test_members_pages_cover_the_audience_once(engine: sa.Engine) -> None:
    rows = rows_of(400)
    write_rows(engine, rows)
    maintain.catch_up(engine)
    audiences = Audiences(engine)
    got: list[str] = []
    cursor = None
    while True:
        page = audiences.members(EXPRESSION, cursor, limit=13)
        got.extend(page.users)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(got) == len(set(got)) and set(got) == brute_force(EXPRESSION, rows, NAMES)
    sample = audiences.sample(EXPRESSION, 10, seed=1)
    assert len(sample.users) == 10 and set(sample.users) <= set(got)
    for forged in ("abc", "²", str(2**32), "-1"):  # not ASCII digits / past 32-bit ids
        with pytest.raises(UsageError, match="cursor"):
            audiences.members(EXPRESSION, forged)


def test_export_to_s3_on_moto(sqlite_url: str, tmp_path: Path) -> None:
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="campaigns")
        load_tags(sqlite_url, SHOP_TAGS)
        engine = create_store_engine(sqlite_url)
        rows = rows_of(120)
        write_rows(engine, rows)
        maintain.catch_up(engine)
        result = Audiences(engine, client).export(EXPRESSION, "s3://campaigns/out/a.parquet")
        client.download_file("campaigns", "out/a.parquet", str(tmp_path / "a.parquet"))
        users = set(pq.read_table(tmp_path / "a.parquet")["user_id"].to_pylist())
        assert result.rows == len(users) and users == brute_force(EXPRESSION, rows, NAMES)
        with pytest.raises(UsageError, match="S3 refused"):
            Audiences(engine, client).export(EXPRESSION, "s3://no-such-bucket/a.csv")
        engine.dispose()
    finally:
        server.stop()


TABLES = st.dictionaries(
    st.text("abcdef0123", min_size=1, max_size=6),
    st.sets(st.sampled_from(sorted(SHOP_TAGS)), max_size=5),
    max_size=40,
)


def test_random_tables_and_expressions_agree_with_brute_force(sqlite_url: str) -> None:
    """Property: for random tag sets (a rebuild each) and random expressions, the index's
    count and members are the brute-force evaluation over user_tags."""
    load_tags(sqlite_url, SHOP_TAGS)
    engine = create_store_engine(sqlite_url)
    audiences = Audiences(engine)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(TABLES, st.lists(expressions(sorted(SHOP_TAGS), list(NAMES)), min_size=1, max_size=5))
    def agrees(rows: dict[str, set[int]], exprs: list[object]) -> None:
        write_rows(engine, rows)
        maintain.catch_up(engine)
        for expression in exprs:
            want = brute_force(expression, rows, NAMES)
            assert audiences.count(expression).count == len(want), expression
            page = audiences.members(expression, limit=MAX_PAGE)
            assert set(page.users) == want, expression

    try:
        agrees()
    finally:
        engine.dispose()


ODD_TEXTS = {"u1": "[101, 102]", "u2": '["103"]', "u3": "[\n104 ]", "u4": "[]", "u5": "[101,104]"}


@pytest.mark.parametrize("chunk, packed_bytes", [(2, 1 << 20), (1000, 40)])
def test_index_rows_are_read_whole_in_chunks_whatever_the_json_spacing(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, chunk: int, packed_bytes: int
) -> None:
    """Chunks smaller than the table, and (MariaDB) packed texts that overflow and halve,
    still read every row once; ids come out of any JSON spacing or quoting."""
    monkeypatch.setattr(store, "MEMBERSHIP_CHUNK", chunk)
    monkeypatch.setattr(store, "_PACKED_MAX_BYTES", packed_bytes)
    now = datetime.now(UTC)
    with transaction(engine) as conn:
        for user, text in ODD_TEXTS.items():
            conn.execute(
                sa.text(
                    "INSERT INTO user_tags (user_id, tag_ids, created_time, updated_time)"
                    " VALUES (:u, :t, :n, :n)"
                ),
                {"u": user, "t": text, "n": now},
            )
        for user in ("u2", "u5", "gone"):
            conn.execute(
                sa.text(
                    "INSERT INTO user_tags_journal (run_id, user_id, written_at, entered, exited)"
                    " VALUES ('r1', :u, :n, '[]', '[]')"
                ),
                {"u": user, "n": now},
            )
        store.assign_ids(conn, None)
        store.assign_ids(conn, ["r1"])
        ids = dict(conn.execute(sa.text("SELECT user_id, idx FROM user_index")).all())
        every = maintain.Members.read(store.membership(conn, None))
        journaled = maintain.Members.read(store.membership(conn, ["r1"]))
    assert set(ids) == {*ODD_TEXTS, "gone"}
    expected = {101: {"u1", "u5"}, 102: {"u1"}, 103: {"u2"}, 104: {"u3", "u5"}}
    assert {t: set(b) for t, b in every.by_tag.items()} == {
        t: {ids[u] for u in users} for t, users in expected.items()
    }
    assert set(every.present) == {ids[u] for u in ODD_TEXTS}
    assert set(journaled.touched) == {ids["u2"], ids["u5"], ids["gone"]}
    assert set(journaled.present) == {ids["u2"], ids["u5"]}
    assert {t: set(b) for t, b in journaled.by_tag.items()} == {
        101: {ids["u5"]},
        103: {ids["u2"]},
        104: {ids["u5"]},
    }


def test_a_tag_ids_text_that_is_not_a_list_of_ids_is_named(engine: sa.Engine) -> None:
    with transaction(engine) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO user_tags (user_id, tag_ids, created_time, updated_time)"
                " VALUES ('u1', '[\"vip\"]', :n, :n)"
            ),
            {"n": datetime.now(UTC)},
        )
        store.assign_ids(conn, None)
        with pytest.raises(TagSysError, match="tag_ids is not a JSON array of ids"):
            maintain.Members.read(store.membership(conn, None))


@pytest.mark.parametrize("written, rebuilt", [(100, False), (200, True)])
def test_runs_that_rewrote_most_rows_are_taken_in_by_a_rebuild(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, written: int, rebuilt: bool
) -> None:
    monkeypatch.setattr(maintain, "REBUILD_MIN_ROWS", 0)
    rows = rows_of(300)
    write_rows(engine, rows)
    maintain.catch_up(engine)
    run = record_run(engine, rows_written=written, journal="on")
    published = maintain.catch_up(engine)
    assert published is not None and published.rebuilt is rebuilt
    assert published.runs == [run.run_id]
    assert "matches user_tags" in check(engine)


def test_a_service_builds_the_index_of_a_store_that_has_rows_but_no_runs(
    sqlite_url: str, tmp_path: Path
) -> None:
    """An adopted store (the original system's rows, no run of ours yet): the service's
    maintenance builds the index instead of waiting for a run that would give it a reason."""
    from tagsys.api import TagSystemAPI
    from tagsys.service.context import ServiceContext
    from tagsys.settings import load_settings

    load_tags(sqlite_url, SHOP_TAGS)
    engine = create_store_engine(sqlite_url)
    rows = rows_of(40)
    write_rows(engine, rows)
    with transaction(engine) as conn:
        conn.execute(sa.delete(tag_runs))
    settings = load_settings("local", db_url=sqlite_url, lake_uri=str(tmp_path))
    with TagSystemAPI(settings=settings) as api:
        context = ServiceContext(settings=settings, api=api, engine=engine)
        context._catch_up_index()
        assert Audiences(engine).count(EXPRESSION).count == len(
            brute_force(EXPRESSION, rows, NAMES)
        )
    engine.dispose()


@pytest.mark.mariadb
def test_a_prune_waits_for_the_rebuild_that_reads_a_run_s_journal(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that ends after a rebuild assigned its ids ahead gets its new users' ids from
    its journal inside the rebuild: a `prune-journal --days 0` meanwhile waits for the rebuild
    instead of deleting the entries under it (which left those users out of the index)."""
    load_tags(mariadb_url, SHOP_TAGS)
    engine = create_store_engine(mariadb_url)
    rows = rows_of(50)
    write_rows(engine, rows)
    maintain.catch_up(engine)
    ahead, assign = store.assign_ids_ahead, store.assign_ids
    pruned: list[PruneResult] = []

    def a_run_ends_after(bind: sa.Engine) -> None:
        ahead(bind)
        journaled_run(bind, "R", {"u99999": {101}})

    def prune_meanwhile(conn: sa.Connection, run_ids: list[str] | None) -> None:
        pruning = threading.Thread(target=lambda: pruned.append(prune(engine, days=0)))
        pruning.start()
        pruning.join(3)  # it finished here before: the journal was gone
        assign(conn, run_ids)

    monkeypatch.setattr(maintain.store, "assign_ids_ahead", a_run_ends_after)
    monkeypatch.setattr(maintain.store, "assign_ids", prune_meanwhile)
    try:
        publication = maintain.rebuild(engine)
        monkeypatch.undo()
        assert publication.runs[-1] == "R"
        rows["u99999"] = {101}
        assert Audiences(engine).count({"or": [101]}).count == len(
            brute_force({"or": [101]}, rows, NAMES)
        )
        assert "matches user_tags" in check(engine)
        for _ in range(100):
            if pruned:
                break
            time.sleep(0.1)
        assert pruned and pruned[0].entries == 1  # the prune went on once the rebuild committed
    finally:
        dispose_engines()
        engine.dispose()


def test_readers_never_see_part_of_a_run_still_going(engine: sa.Engine) -> None:
    """A run's committed batches are not published before it ends, even when another run's
    intake or a rebuild re-reads those users; once it ends its intake publishes them."""
    rows = rows_of(40)
    write_rows(engine, rows)
    maintain.catch_up(engine)
    published = dict(rows)

    def index_shows(expected: dict[str, set[int]]) -> None:
        for expression in ({"or": [101]}, {"not": 102}, EXPRESSION):
            assert Audiences(engine).count(expression).count == len(
                brute_force(expression, expected, NAMES)
            ), expression

    going = {"u00001": {101, 102}, "u00002": set(), "u77777": {101}}  # update, delete, insert
    journaled_run(engine, "A", going, end=False)
    done = {"u00003": {101}, "u00001": {102}}  # u00001 is A's too: held as before A
    journaled_run(engine, "B", done)
    maintain.catch_up(engine)
    index_shows({**published, "u00003": {101}})
    maintain.rebuild(engine)  # a reindex re-reads every row, A's included
    index_shows({**published, "u00003": {101}})

    runs.finish_run(bind=engine, run_id="A", status="completed", rows_written=3)
    maintain.catch_up(engine)
    now = {u: set(r.tag_ids) for u, r in repository.read_user_tags(bind=engine).items()}
    assert now["u77777"] == {101} and not now.get("u00002")
    index_shows(now)
    assert "matches user_tags" in check(engine)
    dispose_engines()


def test_a_user_two_running_runs_wrote_is_held_as_the_first_writer_found_it(
    engine: sa.Engine,
) -> None:
    """Run A started first but C wrote u first: u is held as it was before C (A's journal
    has C's write as its before image)."""
    rows = rows_of(20)
    write_rows(engine, rows)
    maintain.catch_up(engine)
    start_journaled(engine, "A")
    time.sleep(0.01)  # the runs' write times differ
    journaled_run(engine, "C", {"u00001": {103}}, end=False)
    time.sleep(0.01)
    journaled_run(engine, "A", {"u00001": {104}, "u00002": {104}}, end=False, started=True)
    journaled_run(engine, "B", {"u00001": {105}, "u00003": {105}})
    for publish in (maintain.catch_up, maintain.rebuild):
        publish(engine)
        for tag_id in (101, 102, 103, 104, 105):
            expected = brute_force({"or": [tag_id]}, {**rows, "u00003": {105}}, NAMES)
            assert Audiences(engine).count({"or": [tag_id]}).count == len(expected), tag_id
    for run_id in ("A", "C"):
        runs.finish_run(bind=engine, run_id=run_id, status="completed", rows_written=2)
    maintain.catch_up(engine)
    assert "matches user_tags" in check(engine)
    dispose_engines()


def test_the_first_writer_is_told_by_write_times_not_by_their_order(engine: sa.Engine) -> None:
    """A run's write time is that of its write phase's start, not of each row: R1 (time t)
    writes u after R0 (t + 1 s, finished) and before R2 (t + 2 s). u is held as R0 left it,
    not as R2's entry has it (R1's partial write), although R2's before time is the oldest."""
    rows = rows_of(20)
    write_rows(engine, rows)
    maintain.catch_up(engine)
    t = datetime.now(UTC)
    start_journaled(engine, "R1")
    journaled_run(engine, "R0", {"u00001": {103}}, stamp=t + timedelta(seconds=1))
    maintain.catch_up(engine)
    journaled_run(engine, "R1", {"u00001": {104}}, end=False, started=True, stamp=t)
    journaled_run(engine, "R2", {"u00001": {105}}, end=False, stamp=t + timedelta(seconds=2))
    journaled_run(engine, "B", {"u00001": {101}, "u00002": {101}})
    expected = {**rows, "u00001": {103}, "u00002": {101}}
    for publish in (maintain.catch_up, maintain.rebuild):
        publish(engine)
        for tag_id in (101, 103, 104, 105):
            want = brute_force({"or": [tag_id]}, expected, NAMES)
            assert Audiences(engine).count({"or": [tag_id]}).count == len(want), tag_id
    dispose_engines()


@pytest.mark.mariadb
def test_a_prune_waits_out_a_maintenance_longer_than_one_lock_wait(mariadb_url: str) -> None:
    load_tags(mariadb_url, SHOP_TAGS)
    engine = create_store_engine(mariadb_url)
    write_rows(engine, rows_of(5))
    maintain.catch_up(engine)
    journaled_run(engine, "R", {"u00001": {101}})
    impatient = create_store_engine(mariadb_url)
    sa.event.listen(
        impatient,
        "connect",
        lambda dbapi, _: dbapi.cursor().execute("SET SESSION innodb_lock_wait_timeout = 1"),
    )
    pruned: list[PruneResult] = []
    try:
        with engine.connect() as holder, holder.begin():
            store.lock_state(holder)  # a maintenance holding the index's lock for 3 s
            pruning = threading.Thread(target=lambda: pruned.append(prune(impatient, days=0)))
            pruning.start()
            time.sleep(3)
            assert not pruned
        pruning.join(30)
        assert pruned and pruned[0].runs == 1 and pruned[0].entries == 1
    finally:
        dispose_engines()
        impatient.dispose()
        engine.dispose()


def test_a_cli_query_answers_from_the_published_index_while_another_process_holds_it(
    engine: sa.Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A finished run not taken in yet is taken in before a CLI answer, unless another
    process's maintenance holds the index: then the answer comes from the published
    generation after a short wait, with a warning, instead of failing."""
    rows = rows_of(30)
    write_rows(engine, rows)
    maintain.catch_up(engine)
    journaled_run(engine, "R", {"u00001": {103}, "u00002": {103}})
    url = engine.url.render_as_string(hide_password=False)
    query = ["--db-url", url, "--lake-uri", str(tmp_path), "--mode", "audience", "--json"]
    query += ["--expr", '{"or": [103]}']
    before = len(brute_force({"or": [103]}, rows, NAMES))
    after = len(brute_force({"or": [103]}, {**rows, "u00001": {103}, "u00002": {103}}, NAMES))
    assert before != after

    with engine.connect() as holder, holder.begin():
        store.lock_state(holder)  # another process publishing
        assert main(query) == 0
    answered = capsys.readouterr()
    assert json.loads(answered.out)["count"] == before
    assert "answering from the published audience index" in caplog.text
    assert main(query) == 0
    assert json.loads(capsys.readouterr().out)["count"] == after
    dispose_engines()
