"""How existing rows are split into id ranges for the executors to read, and how candidate
rows are handed to the writers."""

from __future__ import annotations

import random
from itertools import pairwise
from typing import TYPE_CHECKING

import pytest

from tagsys.engine.io import _split, in_key_ranges

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.mark.parametrize(
    ("bounds", "cores", "ranges", "widest"),
    [
        ((1, 1000), 8, 1, 1000),  # too few rows to share
        ((1, 300_000), 8, 6, 50_000),  # one range per core
        ((1, 300_000), 2, 2, 150_000),
        ((1, 13_000_000), 2, 65, 200_000),  # memory per task bounded at any size
        ((7, 7), 2, 1, 1),
    ],
)
def test_ranges_cover_the_ids_once_in_bounded_pieces(
    bounds: tuple[int, int], cores: int, ranges: int, widest: int
) -> None:
    split = _split(bounds, cores)
    assert (len(split), max(hi - lo + 1 for lo, hi in split)) == (ranges, widest)
    assert split[0][0] == bounds[0] and split[-1][1] == bounds[1]
    assert all(a[1] + 1 == b[0] for a, b in pairwise(split))


@pytest.mark.parametrize(
    "writers", [None, 3, 1], ids=["server", "TAGSYS_WRITE_PARTITIONS=3", "one writer (SQLite)"]
)
def test_writers_get_disjoint_user_ranges_each_in_order(
    spark: SparkSession, writers: int | None
) -> None:
    users = [f"u{n:05d}" for n in random.Random(3).sample(range(100_000), 3000)]
    rows = spark.createDataFrame([(u, n) for n, u in enumerate(users)], "user_id string, n int")
    hashed = rows.repartition(6, "user_id")

    parts = [
        [row["user_id"] for row in part]
        for part in in_key_ranges(hashed, writers).rdd.glom().collect()
        if part
    ]

    assert len(parts) == (writers or 6)
    assert all(part == sorted(part) for part in parts)
    assert all(a[-1] < b[0] for a, b in pairwise(parts)), "ranges overlap or are out of order"
    assert sorted(u for part in parts for u in part) == sorted(users)
