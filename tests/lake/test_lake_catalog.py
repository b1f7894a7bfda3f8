"""Discovery, schemas, partitions and field resolution, with pyarrow only (no Spark)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from tagsys.errors import FieldError, LakeError
from tagsys.lake.catalog import LakeCatalog
from tests.lake.lake_helpers import write_parquet


def test_discovers_visible_table_folders(lake: Path) -> None:
    catalog = LakeCatalog(str(lake))

    assert sorted(catalog.tables) == ["profile", "scores"]
    assert catalog.tables["profile"].partition_column is None
    assert catalog.tables["profile"].location == str(lake / "profile")
    assert catalog.tables["scores"].partition_column == "dt"
    assert catalog.tables["scores"].partition_dates == (
        date(2024, 1, 1),
        date(2024, 1, 3),
        date(2024, 1, 5),
    )


def test_file_uri_root_is_accepted(lake: Path) -> None:
    assert sorted(LakeCatalog(lake.as_uri()).tables) == ["profile", "scores"]


def test_schema_kinds_and_spark_type_names_come_from_the_data(tmp_path: Path) -> None:
    write_parquet(
        tmp_path / "t",
        {
            "user_id": pa.array([1, 2], pa.int64()),
            "small": pa.array([1, 2], pa.int32()),
            "ratio": pa.array([0.5, 1.5], pa.float64()),
            "money": pa.array([Decimal("1.25"), None], pa.decimal128(18, 2)),
            "name": pa.array(["a", None], pa.string()),
            "big_name": pa.array(["a", "b"], pa.large_string()),
            "born": pa.array([date(2000, 1, 1), None], pa.date32()),
            "seen": pa.array([datetime(2024, 1, 1), None], pa.timestamp("us")),
            "seen_utc": pa.array([datetime(2024, 1, 1), None], pa.timestamp("us", tz="UTC")),
            "flag": pa.array([True, None], pa.bool_()),
            "blob": pa.array([b"x", b"y"], pa.binary()),
            "tags": pa.array([["a"], []], pa.list_(pa.string())),
            "point": pa.array([{"x": 1, "y": 2.0}, None]),
        },
    )
    columns = LakeCatalog(str(tmp_path)).tables["t"].columns

    kinds = {name: (c.kind, c.data_type) for name, c in columns.items()}
    assert kinds == {
        "user_id": ("number", "bigint"),
        "small": ("number", "int"),
        "ratio": ("number", "double"),
        "money": ("number", "decimal(18,2)"),
        "name": ("string", "string"),
        "big_name": ("string", "string"),
        "born": ("date", "date"),
        "seen": ("date", "timestamp_ntz"),
        "seen_utc": ("date", "timestamp"),
        "flag": ("boolean", "boolean"),
        "blob": (None, "binary"),
        "tags": (None, "array<string>"),
        "point": (None, "struct<x:bigint,y:double>"),
    }


def test_schema_resolves_fields_and_hides_user_id_and_partition_column(lake: Path) -> None:
    schema = LakeCatalog(str(lake)).schema()

    assert schema.resolve("score").qualified == "scores.score"
    assert schema.resolve("profile.age").alias == "profile__age"
    assert set(schema.tables["scores"]) == {"score", "age"}
    with pytest.raises(FieldError, match=r"ambiguous field 'age'.*profile.age, scores.age"):
        schema.resolve("age")
    with pytest.raises(FieldError, match="unknown field 'dt'"):
        schema.resolve("dt")
    with pytest.raises(FieldError, match="unknown field 'user_id'"):
        schema.resolve("user_id")
    with pytest.raises(FieldError, match="unknown table 'nope'"):
        schema.resolve("nope.age")


def test_partition_column_inside_the_files_is_not_a_column(tmp_path: Path) -> None:
    write_parquet(tmp_path / "t" / "dt=2024-02-01", {"user_id": ["a"], "dt": ["2024-02-01"]})

    assert list(LakeCatalog(str(tmp_path)).tables["t"].columns) == ["user_id"]


def test_compact_partition_dates_keep_their_folder_names(tmp_path: Path) -> None:
    write_parquet(tmp_path / "t" / "ds=20240201", {"user_id": ["a"]})
    catalog = LakeCatalog(str(tmp_path))

    snapshot = catalog.snapshot_for("t", date(2024, 2, 9))

    assert snapshot.paths == (f"{tmp_path}/t/ds=20240201",)
    assert snapshot.partition_values == ("20240201",)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (date(2024, 1, 3), "2024-01-03"),
        (date(2024, 1, 4), "2024-01-03"),
        (date(2030, 1, 1), "2024-01-05"),
    ],
)
def test_snapshot_is_the_partition_of_as_of_or_the_latest_before(
    lake: Path, as_of: date, expected: str
) -> None:
    snapshot = LakeCatalog(str(lake)).snapshot_for("scores", as_of)

    assert snapshot.paths == (f"{lake}/scores/dt={expected}",)
    assert snapshot.partitions == (date.fromisoformat(expected),)
    assert snapshot.partition_column == "dt"


def test_no_partition_before_as_of_names_table_and_earliest(lake: Path) -> None:
    with pytest.raises(
        LakeError, match=r"'scores' has no partition on or before 2023-12-31.*2024-01-01"
    ):
        LakeCatalog(str(lake)).snapshot_for("scores", date(2023, 12, 31))


def test_unpartitioned_snapshot_is_the_table_folder(lake: Path) -> None:
    snapshot = LakeCatalog(str(lake)).snapshot_for("profile", date(2024, 1, 1))

    assert snapshot.paths == (str(lake / "profile"),)
    assert snapshot.partitions == ()


def test_unknown_table_is_a_lake_error(lake: Path) -> None:
    with pytest.raises(LakeError, match="unknown lake table 'nope'; tables: profile, scores"):
        LakeCatalog(str(lake)).snapshot_for("nope", date(2024, 1, 1))


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match=f"'{tmp_path / 'absent'}' does not exist"):
        _ = LakeCatalog(str(tmp_path / "absent")).tables


def test_empty_root_says_there_are_no_tables(tmp_path: Path) -> None:
    (tmp_path / "_SUCCESS").touch()
    with pytest.raises(LakeError, match="no tables found in the lake root"):
        LakeCatalog(str(tmp_path)).schema()


def test_table_without_user_id_column_is_named(lake: Path) -> None:
    write_parquet(lake / "orphans", {"customer": ["c1"]})

    with pytest.raises(LakeError, match=r"table 'orphans'.*no user id column 'user_id'.*customer"):
        _ = LakeCatalog(str(lake)).tables


def test_user_id_column_is_configurable(tmp_path: Path) -> None:
    write_parquet(tmp_path / "t", {"uid": ["a"], "x": [1]})
    catalog = LakeCatalog(str(tmp_path), user_id_column="uid")

    assert set(catalog.schema().tables["t"]) == {"x"}
    assert catalog.schema().user_id_column == "uid"


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "part-0.parquet").write_bytes(b"this is not parquet")

    with pytest.raises(LakeError, match=r"Parquet footer of '.*t/part-0.parquet'"):
        _ = LakeCatalog(str(tmp_path)).tables


def test_table_folder_without_data_files(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "_SUCCESS").touch()

    with pytest.raises(LakeError, match="holds no data files"):
        _ = LakeCatalog(str(tmp_path)).tables


def test_non_date_partitions_are_rejected(tmp_path: Path) -> None:
    write_parquet(tmp_path / "t" / "region=eu", {"user_id": ["a"]})

    with pytest.raises(LakeError, match="'region=eu' whose value is not a date"):
        _ = LakeCatalog(str(tmp_path)).tables


def test_event_tables_must_be_partitioned_tables(lake: Path) -> None:
    assert LakeCatalog(str(lake), event_tables=["scores"]).tables["scores"].event_partitioned
    with pytest.raises(LakeError, match="event_tables names 'profile'"):
        _ = LakeCatalog(str(lake), event_tables=["profile"]).tables


def test_catalog_tables_without_spark_say_so(lake: Path) -> None:
    with pytest.raises(LakeError, match="no SparkSession"):
        _ = LakeCatalog(str(lake), catalog_tables={"t": "db.t"}).tables


def test_discovery_does_not_import_pyspark(lake: Path) -> None:
    code = (
        "import sys; from tagsys.lake.catalog import LakeCatalog; "
        f"LakeCatalog({str(lake)!r}).schema(); assert 'pyspark' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
