"""`migrate` adopts a database of the original system in place (MariaDB: what teams run)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from tagsys.cli import main
from tagsys.errors import StoreError
from tagsys.store import adopt, migrate
from tests.store.original import original_database

pytestmark = pytest.mark.mariadb

OLD_ROWS = [
    ("user_000001", "[1, 3]", '{"1": {"tag_name": "高净值用户"}, "3": {"tag_name": "低风险用户"}}'),
    ("user_000002", "[]", None),
    ("User_000003", "[8]", '{"8": {"tag_name": "最近活跃用户"}}'),
]


@pytest.fixture(params=["init_database.sql", "README"])
def original_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with original_database(readme_user_tags=request.param == "README") as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for number, (user_id, ids, details) in enumerate(OLD_ROWS, 1):
                values = {"u": user_id, "i": ids, "d": details, "n": number}
                if request.param == "README":
                    conn.execute(
                        sa.text(
                            "INSERT INTO user_tags (user_id, tag_ids, tag_details, created_time,"
                            " updated_time) VALUES (:u, :i, :d,"
                            " DATE_ADD('2024-05-01 08:00:00', INTERVAL :n DAY), NOW())"
                        ),
                        values,
                    )
                else:
                    conn.execute(
                        sa.text(
                            "INSERT INTO user_tags (user_id, tag_ids, tag_details, computed_date)"
                            " VALUES (:u, :i, :d, DATE_ADD('2024-06-01', INTERVAL :n DAY))"
                        ),
                        values,
                    )
        engine.dispose()
        yield url


def snapshot(url: str) -> dict[str, Any]:
    """Every table's columns and every row of the seed tables."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        columns = conn.execute(
            sa.text(
                "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME"
                " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
                " ORDER BY TABLE_NAME, COLUMN_NAME"
            )
        ).all()
        data = {
            table: conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1")).all()
            for table in ("tag_category", "tag_definition", "tag_rules")
        }
        data["user_tags"] = conn.execute(
            sa.text("SELECT id, user_id, tag_ids, tag_details FROM user_tags ORDER BY id")
        ).all()
    engine.dispose()
    return {"columns": columns, **data}


def user_tag_times(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT user_id, created_time, updated_time FROM user_tags ORDER BY id")
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_migrate_shows_the_plan_and_changes_nothing_without_yes(
    original_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(original_url)

    code = main(["--mode", "migrate", "--db-url", original_url])

    out, err = capsys.readouterr()
    assert code == 1
    assert "--yes" in err and "nothing was changed" in err
    assert "3 rows, all of which are kept" in out
    assert "ALTER TABLE user_tags" in out
    assert "utf8mb4_unicode_ci -> utf8mb4_bin" in out
    assert "create the product's table tag_jobs" in out
    if "computed_date" in str(before["columns"]):
        assert "MODIFY computed_date DATE NULL" in out
        assert "from computed_date" in out
    assert snapshot(original_url) == before
    assert migrate.current_revision(original_url) is None


def test_migrate_yes_adopts_keeping_every_row_then_is_a_no_op(
    original_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(original_url)
    readme = "computed_date" not in str(before["columns"])
    old_times = user_tag_times(original_url) if readme else None

    assert main(["--mode", "migrate", "--db-url", original_url, "--yes"]) == 0

    assert migrate.current_revision(original_url) == migrate.head_revision()
    after = snapshot(original_url)
    for table in ("tag_category", "tag_definition", "tag_rules", "user_tags"):
        width = len(before[table][0]) if before[table] else 0
        kept = [tuple(row)[:width] for row in after[table]]
        assert kept == [tuple(row) for row in before[table]], table
    # tag management's columns, appended: version 0 (never managed), not deleted
    assert {tuple(row)[-2:] for row in after["tag_definition"]} == {(0, None)}
    times = user_tag_times(original_url)
    if readme:
        assert times == old_times  # TIMESTAMP values kept as the same UTC instants
    else:
        assert [t[1] for t in times] == [datetime(2024, 6, 1 + n) for n in (1, 2, 3)]
        assert [t[1] for t in times] == [t[2] for t in times]
    engine = sa.create_engine(original_url)
    with engine.begin() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert {"tag_jobs", "tag_runs", "alembic_version"} <= tables
        # the product's collation: another case is another user
        conn.execute(
            sa.text("INSERT INTO user_tags (user_id, tag_ids) VALUES ('USER_000001', '[]')")
        )
    engine.dispose()
    capsys.readouterr()

    adopted = snapshot(original_url)
    assert main(["--mode", "migrate", "--db-url", original_url]) == 0
    out = capsys.readouterr().out
    assert "original system" not in out
    assert snapshot(original_url) == adopted


def test_the_adopted_store_takes_the_products_writes(original_url: str) -> None:
    from tagsys.store.db import create_store_engine
    from tagsys.store.repository import read_user_tags, upsert_category

    migrate.upgrade(original_url, adopt=True)

    engine = create_store_engine(original_url)
    assert upsert_category(bind=engine, category_name="迁移后") == 6
    assert sorted(read_user_tags(bind=engine)) == ["User_000003", "user_000001", "user_000002"]
    engine.dispose()


def test_rows_that_would_collide_are_reported_before_anything_changes(
    original_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = sa.create_engine(original_url)
    with engine.begin() as conn:
        for index in sa.inspect(conn).get_indexes("user_tags"):
            if index.get("unique"):
                conn.execute(sa.text(f"ALTER TABLE user_tags DROP INDEX {index['name']}"))
        # a copy of a row: the same user twice, as a table without the unique key allows
        conn.execute(
            sa.text(
                "INSERT INTO user_tags (user_id, tag_ids, tag_details) SELECT user_id, '[5]',"
                " tag_details FROM user_tags WHERE user_id = 'user_000002'"
            )
            if "computed_date" not in str(snapshot(original_url)["columns"])
            else sa.text(
                "INSERT INTO user_tags (user_id, tag_ids, computed_date) SELECT user_id, '[5]',"
                " computed_date FROM user_tags WHERE user_id = 'user_000002'"
            )
        )
    engine.dispose()
    before = snapshot(original_url)

    code = main(["--mode", "migrate", "--db-url", original_url, "--yes"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "'user_000002' (2 rows)" in err and "REFUSED" in out
    assert snapshot(original_url) == before


def test_a_failure_midway_is_finished_by_running_migrate_again(
    original_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(original_url)
    monkeypatch.setattr(adopt, "BACKFILL_CHUNK_IDS", 2)
    real_backfill = adopt._backfill

    def fail_after_first_chunk(conn: sa.Connection, sql: str, stamp: datetime) -> None:
        conn.execute(sa.text(sql), {"lo": 1, "hi": 2, "stamp": stamp})
        raise StoreError("simulated crash after the first batch")

    monkeypatch.setattr(adopt, "_backfill", fail_after_first_chunk)
    with pytest.raises(StoreError, match="simulated crash"):
        migrate.upgrade(original_url, adopt=True)
    assert migrate.current_revision(original_url) is None
    monkeypatch.setattr(adopt, "_backfill", real_backfill)

    assert migrate.upgrade(original_url, adopt=True) == migrate.head_revision()

    after = snapshot(original_url)
    assert after["user_tags"] == before["user_tags"]
    assert all(t[1] is not None and t[2] is not None for t in user_tag_times(original_url))
    assert migrate.adoption_plan(original_url) is None


def test_the_product_refuses_to_run_on_an_unadopted_database(original_url: str) -> None:
    with pytest.raises(StoreError, match="--mode migrate --yes"):
        migrate.upgrade(original_url)


def test_health_says_how_to_adopt(original_url: str) -> None:
    from types import SimpleNamespace

    from tagsys.errors import TagSysError
    from tagsys.health import _store

    api = SimpleNamespace(db_url=original_url, settings=SimpleNamespace(safe_database_url="db"))
    with pytest.raises(TagSysError, match=r"original system's tables.*--mode migrate --yes"):
        _store(api)  # type: ignore[arg-type]
    migrate.upgrade(original_url, adopt=True)
    assert "schema" in _store(api)  # type: ignore[arg-type]


def test_a_large_user_tags_shows_the_servers_estimate(
    original_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adopt, "EXACT_COUNT_LIMIT", -1)

    plan = migrate.adoption_plan(original_url)

    assert plan is not None and plan.user_tags_rows.startswith("about ")
    assert "holds about " in plan.render()
