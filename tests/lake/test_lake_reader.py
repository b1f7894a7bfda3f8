"""Reading snapshots with real Spark: only the needed columns of the chosen partition."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tagsys.errors import LakeError
from tagsys.lake.catalog import LakeCatalog
from tagsys.lake.reader import find_duplicate_user_ids, read_snapshot
from tests.lake.lake_helpers import write_parquet

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark


def _plan(frame: DataFrame) -> str:
    return frame._jdf.queryExecution().executedPlan().toString()


def test_reads_only_needed_columns_of_the_as_of_partition(spark: SparkSession, lake: Path) -> None:
    (lake / "scores" / "dt=2024-01-05" / "part-1.parquet").write_bytes(b"never read")
    catalog = LakeCatalog(str(lake))

    frame = read_snapshot(spark, catalog.snapshot_for("scores", date(2024, 1, 4)), ["score"])

    assert frame.columns == ["user_id", "scores__score"]
    assert sorted(map(tuple, frame.collect())) == [("u1", 3.0), ("u2", 3.5)]
    assert all("dt=2024-01-03" in f for f in frame.inputFiles())
    assert "ReadSchema: struct<user_id:string,score:double>" in _plan(frame)


def test_unpartitioned_table_and_repeated_columns(spark: SparkSession, lake: Path) -> None:
    snapshot = LakeCatalog(str(lake)).snapshot_for("profile", date(2024, 1, 1))

    frame = read_snapshot(spark, snapshot, ["age", "user_id", "age"])

    assert frame.columns == ["user_id", "profile__age"]
    assert frame.count() == 3


def test_user_id_column_is_renamed(spark: SparkSession, tmp_path: Path) -> None:
    write_parquet(tmp_path / "t", {"uid": ["a", "b"], "x": [1, 2]})
    catalog = LakeCatalog(str(tmp_path), user_id_column="uid")

    frame = read_snapshot(spark, catalog.snapshot_for("t", date(2024, 1, 1)), ["x"])

    assert frame.columns == ["user_id", "t__x"]


def test_missing_column_is_a_lake_error(spark: SparkSession, lake: Path) -> None:
    snapshot = LakeCatalog(str(lake)).snapshot_for("profile", date(2024, 1, 1))

    with pytest.raises(LakeError, match="table 'profile' has no column income"):
        read_snapshot(spark, snapshot, ["income"])


def test_find_duplicate_user_ids(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [("b",), ("a",), ("b",), ("c",), ("a",), ("d",), ("d",)], "user_id string"
    )

    assert find_duplicate_user_ids(frame, limit=2) == ["a", "b"]
    assert find_duplicate_user_ids(frame.distinct()) == []


def test_catalog_table_schema_partitions_and_read(spark: SparkSession, tmp_path: Path) -> None:
    name = f"lake_test_{uuid.uuid4().hex[:8]}"
    rows = [("u1", 10, "2024-03-01"), ("u1", 11, "2024-03-02"), ("u2", 20, "2024-03-02")]
    source = spark.createDataFrame(rows, "user_id string, visits int, dt string")
    source.write.partitionBy("dt").option("path", str(tmp_path / name)).saveAsTable(name)
    try:
        catalog = LakeCatalog(
            None, catalog_tables={"visits": f"default.{name}"}, spark=lambda: spark
        )

        table = catalog.tables["visits"]
        assert table.catalog_table == f"default.{name}"
        assert table.partition_dates == (date(2024, 3, 1), date(2024, 3, 2))
        assert catalog.schema().resolve("visits").data_type == "int"
        assert catalog.schema().resolve("visits").kind == "number"

        snapshot = catalog.snapshot_for("visits", date(2024, 3, 1))
        frame = read_snapshot(spark, snapshot, ["visits"])
        assert frame.collect() == [("u1", 10)]
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {name}")


def test_unknown_catalog_table_is_a_lake_error(spark: SparkSession) -> None:
    catalog = LakeCatalog(None, catalog_tables={"t": "default.no_such_table"}, spark=spark)

    with pytest.raises(LakeError, match=r"cannot open catalog table 'default\.no_such_table'"):
        _ = catalog.tables
