"""A backfill reads an older partition; one that lacks a column fails only the tags using it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa

from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tests.engine.lakes import load_tags, write_table

OLD = pa.schema([("user_id", pa.string()), ("amount", pa.float64())])
NEW = pa.schema([("user_id", pa.string()), ("amount", pa.float64()), ("channel", pa.string())])


def test_a_partition_without_a_column_fails_only_the_tags_that_use_it(
    make_api, db_url: str, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    old_rows = [{"user_id": f"u{i}", "amount": float(i)} for i in range(10)]
    write_table(lake, "orders", old_rows, OLD, "dt=2024-05-31")
    new_rows = [{**r, "channel": "app" if i % 2 else "web"} for i, r in enumerate(old_rows)]
    write_table(lake, "orders", new_rows, NEW, "dt=2024-06-29")
    big = {"logic": "AND", "conditions": [{"field": "amount", "operator": ">=", "value": 5}]}
    app = {"logic": "AND", "conditions": [{"field": "channel", "operator": "=", "value": "app"}]}
    load_tags(db_url, {1: ("big", "value", [big]), 2: ("app", "channel", [app])})
    api = make_api(db_url, lake)
    api.run(api.request("task-all", as_of=date(2024, 6, 30)))  # today's tags, both tags

    backfill = api.run(api.request("task-all", as_of=date(2024, 6, 1)))

    outcomes = {t.tag_id: t for t in backfill.tags}
    assert outcomes[1].status == "ok" and outcomes[1].matched == 5
    assert outcomes[2].status == "failed"
    assert "orders.channel" in (outcomes[2].message or "")
    assert "2024-06-01" in (outcomes[2].message or "")
    engine = create_store_engine(db_url)
    stored = {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    engine.dispose()
    expected = {}
    for i in range(10):
        tags = ([1] if i >= 5 else []) + ([2] if i % 2 else [])
        if tags:
            expected[f"u{i}"] = tags
    assert stored == expected
