"""Drop-in for the original system: its database (made by its unchanged init_database.sql, or
with its README's user_tags) and a lake shaped like its generator's output.

`migrate` shows the plan and refuses without --yes, adopts with it keeping every row, then
`task-all` gives exactly the tags an independent computation gives for all eight original
rules, and running both again changes nothing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from tagsys.cli import main
from tests.engine.original_lake import (
    AS_OF,
    expected_tags,
    unparseable,
    write_original_lake,
)
from tests.store.original import original_database

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tests.engine.conftest import MakeApi

pytestmark = [pytest.mark.mariadb, pytest.mark.spark]

USERS = 1000
GONE = ("user_999998", "user_999999")
"""Users the original system tagged who are no longer in the lake."""


@pytest.fixture(scope="module")
def warehouse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_original_lake(spark, tmp_path_factory.mktemp("original"), users=USERS)


def _old_rows(readme: bool) -> list[dict[str, Any]]:
    """What the original system's last run left: some right, some stale, a few gone users."""
    rng = random.Random(3)
    users = [f"user_{n:06d}" for n in rng.sample(range(1, USERS + 1), 300)] + list(GONE)
    rows = []
    for uid in users:
        ids = sorted(rng.sample(range(1, 9), rng.randint(0, 4)))
        details = {str(t): {"tag_name": f"旧{t}"} for t in ids}
        rows.append(
            {
                "u": uid,
                "i": json.dumps(ids),
                "d": None if uid.endswith("7") else json.dumps(details, ensure_ascii=False),
                "c": "2025-01-14",
            }
        )
    return rows


@pytest.fixture(params=["init_database.sql", "README"])
def original_url(request: pytest.FixtureRequest) -> Iterator[str]:
    readme = request.param == "README"
    with original_database(readme_user_tags=readme) as url:
        engine = sa.create_engine(url)
        insert = (
            "INSERT INTO user_tags (user_id, tag_ids, tag_details, created_time) "
            "VALUES (:u, :i, :d, :c)"
            if readme
            else "INSERT INTO user_tags (user_id, tag_ids, tag_details, computed_date) "
            "VALUES (:u, :i, :d, :c)"
        )
        with engine.begin() as conn:
            conn.execute(sa.text(insert), _old_rows(readme))
        engine.dispose()
        yield url


def _stored(url: str) -> dict[str, tuple[Any, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT user_id, id, tag_ids, tag_details FROM user_tags ORDER BY id")
        ).all()
    engine.dispose()
    return {r[0]: tuple(r[1:]) for r in rows}


def _created(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT user_id, created_time FROM user_tags")).all()
    engine.dispose()
    return dict(rows)  # type: ignore[arg-type]


def test_adopt_then_task_all_gives_every_tag_right_and_keeps_every_row(
    original_url: str,
    warehouse: Path,
    make_api: MakeApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _stored(original_url)
    migrate_cli = ["--mode", "migrate", "--db-url", original_url]

    assert main(migrate_cli) == 1  # the plan, and nothing changed
    assert "ALTER TABLE user_tags" in capsys.readouterr().out
    assert _stored(original_url) == before
    assert main([*migrate_cli, "--yes"]) == 0
    assert _stored(original_url) == before
    created = _created(original_url)

    api = make_api(original_url, warehouse)
    dry = api.run(api.request("task-all", as_of=AS_OF, dry_run=True))
    assert dry.succeeded and _stored(original_url) == before
    summary = api.run(api.request("task-all", as_of=AS_OF))

    assert summary.succeeded, summary.render()
    expected = expected_tags(warehouse)
    stored = _stored(original_url)
    for uid, tags in expected.items():
        got = json.loads(stored[uid][1]) if uid in stored else []
        assert got == sorted(tags), uid
    for uid in GONE:
        assert json.loads(stored[uid][1]) == []  # left the lake: tags removed, row kept
    assert {uid: row[0] for uid, row in stored.items() if uid in before} == {
        uid: row[0] for uid, row in before.items()
    }  # every old row kept, with its id
    assert set(stored) == set(before) | {uid for uid, tags in expected.items() if tags}
    names = {1: "高净值用户", 4: "新注册用户", 8: "最近活跃用户"}
    for row in stored.values():
        details = json.loads(row[2])
        assert sorted(map(int, details)) == json.loads(row[1])
        for tag, name in names.items():
            if tag in json.loads(row[1]):
                assert details[str(tag)]["tag_name"] == name
    created_after = _created(original_url)
    assert {u: created_after[u] for u in before} == created  # created_time set once
    counts = {t.tag_id: t.matched for t in summary.tags}
    assert counts == {t: sum(t in tags for tags in expected.values()) for t in range(1, 9)}
    assert counts[4] > 0 and counts[8] > 0
    tag4 = next(t for t in summary.tags if t.tag_id == 4)
    bad = unparseable(warehouse, "registration_date", "user_basic_info")
    assert bad > 0
    assert tag4.unparsed_dates == {"user_basic_info.registration_date": bad}
    assert "not dates" in summary.render()

    capsys.readouterr()
    lake = ["--db-url", original_url, "--lake-uri", str(warehouse)]
    assert main(["--mode", "validate", *lake]) == 0  # warnings only
    out = capsys.readouterr().out
    assert "2 warning(s)" in out and "registration_date" in out and "last_login_date" in out
    assert main(["--mode", "explain", "--tag-id", "4", "--user-id", "user_000097", *lake]) == 0
    assert 'text "unknown", which is not a date' in capsys.readouterr().out

    assert main(migrate_cli) == 0  # adopted: a no-op now
    assert "original system" not in capsys.readouterr().out
    again = api.run(api.request("task-all", as_of=AS_OF))
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    assert _stored(original_url) == stored
