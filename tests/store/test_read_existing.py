"""Reading existing rows back for the engine: ids, tag_ids text and the details' digest."""

from __future__ import annotations

import hashlib
from itertools import pairwise
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from tagsys.errors import StoreError
from tagsys.store.adapters import MySQLAdapter
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tagsys.store.writer import id_bounds, read_existing_partition

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TRICKY_IDS = ['say "hi"', "a,b", "line\nbreak", "back\\slash", "", "财富", "tab\tx", '"', ",\n"]


def _insert(url: str, rows: list[tuple[str, str, str | None]]) -> None:
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO user_tags (user_id, tag_ids, tag_details) VALUES (:u, :i, :d)"
                ),
                [{"u": u, "i": i, "d": d} for u, i, d in rows],
            )
    finally:
        engine.dispose()


def _sha1(text: str | None) -> str | None:
    return None if text is None else hashlib.sha1(text.encode()).hexdigest()


def _rows(count: int) -> list[tuple[str, str, str | None]]:
    rows = [(u, f"[{n}]", f'{{"{n}":{{"tag_name":"x{n}"}}}}') for n, u in enumerate(TRICKY_IDS)]
    rows += [
        (f"user-{n}", f"[{n % 7}, {n % 11}]", None if n % 5 else '{"a":1}') for n in range(count)
    ]
    return rows


def _read_all(url: str) -> dict[str, tuple[str, str | None]]:
    low, high = id_bounds(url) or (0, 0)
    batch = read_existing_partition(url, low, high)
    return {r["user_id"]: (r["tag_ids"], r["details_digest"]) for r in batch.to_pylist()}


def test_every_row_comes_back_exactly(migrated_url: str) -> None:
    rows = _rows(500)
    _insert(migrated_url, rows)

    assert _read_all(migrated_url) == {u: (i, _sha1(d)) for u, i, d in rows}


@pytest.mark.mariadb
def test_mysql_reads_a_range_in_smaller_texts_when_one_would_be_too_long(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(mariadb_url)
    rows = _rows(300)
    _insert(mariadb_url, rows)
    monkeypatch.setattr(MySQLAdapter, "PACKED_READ_IDS", 128)
    monkeypatch.setattr(MySQLAdapter, "PACKED_READ_MAX_BYTES", 500)  # ~8 rows a text

    assert _read_all(mariadb_url) == {u: (i, _sha1(d)) for u, i, d in rows}

    monkeypatch.setattr(MySQLAdapter, "PACKED_READ_MAX_BYTES", 40)  # not even one row
    with pytest.raises(StoreError, match="too large to read"):
        _read_all(mariadb_url)


def _sparse_ids(url: str, rows: int, gap: int, first: int = 1) -> list[int]:
    """Rows whose ids are `gap` apart, as after many runs' upserts burned ids on InnoDB."""
    engine = create_store_engine(url)
    ids = [first + n * gap for n in range(rows)]
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO user_tags (id, user_id, tag_ids) VALUES (:i, :u, '[1]')"),
                [{"i": i, "u": f"u{i}"} for i in ids],
            )
    finally:
        engine.dispose()
    return ids


def test_read_ranges_are_sized_by_rows_not_by_the_id_span(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tagsys.engine import io

    monkeypatch.setattr(io, "_ROWS_PER_READ", 250)
    monkeypatch.setattr(io, "_MIN_ROWS_PER_READ", 100)
    ids = _sparse_ids(migrated_url, 1000, gap=1000)

    ranges = io.read_ranges(migrated_url, None, partitions=2)

    per_range = [sum(lo <= i <= hi for i in ids) for lo, hi in ranges]
    assert per_range == [250, 250, 250, 250]
    assert ranges[0][0] == ids[0] and ranges[-1][1] == ids[-1]
    assert all(a[1] + 1 == b[0] for a, b in pairwise(ranges))
    assert io.read_ranges(migrated_url, ["u1"], partitions=2) == [(ids[0], ids[-1])]


def test_dense_ids_are_split_without_a_row_number_query(migrated_url: str) -> None:
    from tagsys.engine import io

    _insert(migrated_url, _rows(300))

    assert io.read_ranges(migrated_url, None, partitions=2) == [(1, 309)]


def test_ranges_over_a_dense_head_and_a_sparse_tail_hold_at_most_a_step(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tagsys.engine import io

    monkeypatch.setattr(io, "_ROWS_PER_READ", 100)
    monkeypatch.setattr(io, "_MIN_ROWS_PER_READ", 50)
    _insert(migrated_url, [(f"d{n}", "[1]", None) for n in range(300)])  # ids 1..300
    ids = list(range(1, 301)) + _sparse_ids(migrated_url, 100, gap=5000, first=5000)

    ranges = io.read_ranges(migrated_url, None, partitions=2)

    per_range = [sum(lo <= i <= hi for i in ids) for lo, hi in ranges]
    assert sum(per_range) == 400 and max(per_range) <= 100
    assert len(ranges) <= 6, ranges
    assert ranges[0][0] == 1 and ranges[-1][1] == max(ids)
    assert all(a[1] + 1 == b[0] for a, b in pairwise(ranges))


def test_the_executors_read_every_row_once_from_ranges_numbered_in_the_jvm(
    migrated_url: str, spark: SparkSession
) -> None:
    from tagsys.engine.io import existing_frame

    empty = existing_frame(spark, migrated_url, None, 3)
    assert empty.collect() == [] and empty.schema == _existing_schema(spark)
    _insert(migrated_url, _rows(500))

    frame = existing_frame(spark, migrated_url, None, 3)
    got = [(r["user_id"], (r["tag_ids"], r["details_digest"])) for r in frame.collect()]

    assert len(got) == len(dict(got)) and dict(got) == _read_all(migrated_url)
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert "Range" in plan and "Exchange" not in plan, "no shuffle of seeds before the reads"


def _existing_schema(spark: SparkSession) -> object:
    from tagsys.engine.io import EXISTING_SCHEMA

    return spark.createDataFrame([], EXISTING_SCHEMA).schema
