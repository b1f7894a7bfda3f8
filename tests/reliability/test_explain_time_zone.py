"""`explain` sees the values a run sees: timestamps are dated in the business time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa

from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tests.engine.lakes import load_tags, write_table

LOGINS = pa.schema([("user_id", pa.string()), ("last_login", pa.timestamp("us", tz="UTC"))])


def test_explain_dates_a_timestamp_like_the_run_does(
    make_api, sqlite_url: str, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    evening_utc = datetime(2024, 6, 29, 20, 0, tzinfo=UTC)  # 2024-06-30 04:00 in Shanghai
    write_table(lake, "logins", [{"user_id": "u1", "last_login": evening_utc}], LOGINS)
    rule = {
        "logic": "AND",
        "conditions": [
            {
                "field": "last_login",
                "operator": "date_between",
                "value": ["2024-06-30", "2024-06-30"],
                "type": "date",
            }
        ],
    }
    load_tags(sqlite_url, {1: ("logged in on the 30th", "activity", [rule])})
    api = make_api(sqlite_url, lake, timezone="Asia/Shanghai")
    as_of = date(2024, 6, 30)

    api.run(api.request("task-all", as_of=as_of))
    text = api.explain(1, "u1", as_of)

    engine = create_store_engine(sqlite_url)
    stored = {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    engine.dispose()
    assert stored == {"u1": [1]}
    assert "=> tag 1 applies to u1" in text, text
    assert "2024-06-30 04:00" in text, text
