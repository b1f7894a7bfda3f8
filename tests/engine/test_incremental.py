"""Incremental runs: which users are recomputed (`engine/incremental.py`), end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from tagsys.api import TagSystemAPI
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tests.engine.lakes import ADULT, AS_OF, load_tags, write_table


def ids(db_url: str) -> dict[str, list[int]]:
    engine = create_store_engine(db_url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


SEEN = pa.schema(
    [("user_id", pa.string()), ("age", pa.int32()), ("seen_at", pa.timestamp("us", tz="UTC"))]
)


def test_change_column_timestamp_is_dated_in_the_configured_time_zone(
    make_api, sqlite_url: str, tmp_path: Path
) -> None:
    """as_of is a business date in `timezone` (Asia/Shanghai here): a row changed at
    2024-06-30 01:30 Shanghai time (2024-06-29 17:30 UTC) changed on 2024-06-30, so
    `incremental --days 0` on 2024-06-30 recomputes it."""
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
