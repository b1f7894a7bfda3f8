"""Shuffle partitions chosen from the data, and a join with the stored rows that adds no
shuffle to the lake side."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tagsys.engine import frames, sizing

if TYPE_CHECKING:
    from pathlib import Path

    import pytest
    from pyspark.sql import DataFrame, SparkSession


def _lake_frame(spark: SparkSession, folder: Path, users: int) -> DataFrame:
    rows = [(f"u{i:06d}", i % 97, f"city{i % 13}") for i in range(users)]
    spark.createDataFrame(rows, "user_id string, age int, city string").write.parquet(str(folder))
    return spark.read.parquet(str(folder))


def test_partitions_grow_with_the_lake_and_the_stored_rows(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    floor = int(spark.conf.get("spark.sql.shuffle.partitions") or 0)
    lake = [_lake_frame(spark, tmp_path / "t", 20_000)]
    size = sizing.lake_bytes(lake)
    assert size > 50_000, "the estimate is the files' size"
    assert sizing.shuffle_partitions(spark, lake, 0, listed_users=False) == floor
    monkeypatch.setattr(sizing, "LAKE_BYTES_PER_PARTITION", size // 40)
    assert sizing.shuffle_partitions(spark, lake, 0, listed_users=False) >= 40
    assert sizing.shuffle_partitions(spark, lake, 0, listed_users=True) == floor
    rows = 100 * sizing.USERS_PER_PARTITION
    monkeypatch.setattr(sizing, "LAKE_BYTES_PER_PARTITION", 1 << 40)
    assert sizing.shuffle_partitions(spark, lake, rows, listed_users=False) == max(floor, 100)
    monkeypatch.setattr(sizing, "MAX_PARTITIONS", 64)
    assert sizing.shuffle_partitions(spark, lake, rows, listed_users=False) == max(floor, 64)


def test_the_join_with_stored_rows_reuses_the_lake_sides_partitioning(
    spark: SparkSession, tmp_path: Path
) -> None:
    lake = _lake_frame(spark, tmp_path / "t", 500)
    inputs = [frames.TableInput("t", lake.withColumnRenamed("age", "t__age").drop("city"))]
    users = frames.user_frame(spark, inputs, None, partitions=7)
    stored = spark.createDataFrame(
        [("u000001", "[1]", "x"), ("gone", "[2]", "y")],
        f"{frames.USER} string, {frames.OLD_IDS_JSON} string, {frames.OLD_DETAILS_DIGEST} string",
    )
    computed = users.select(frames.USER, frames.DUPLICATE)
    joined = frames.with_existing(computed, stored, all_users=True, partitions=7)
    plan = joined._jdf.queryExecution().executedPlan().toString()
    shuffles = re.findall(r"Exchange hashpartitioning\(user_id#\d+, (\d+)\)", plan)
    assert shuffles == ["7", "7"], plan  # one per side, none added for the join
    assert joined.count() == 501
    assert joined.rdd.getNumPartitions() == 7
