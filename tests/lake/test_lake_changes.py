"""Incremental change detection, one test per case of SPEC section 5."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from tagsys.errors import LakeError
from tagsys.lake.catalog import LakeCatalog
from tagsys.lake.reader import changed_user_ids
from tests.lake.lake_helpers import write_parquet

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

AS_OF = date(2024, 5, 10)


def _ids(frame: DataFrame) -> list[str]:
    assert frame.columns == ["user_id"]
    return sorted(row.user_id for row in frame.collect())


@pytest.fixture
def snapshots(tmp_path: Path) -> Path:
    """Daily snapshots: u2 changes a value, u3 turns null, u4 leaves, u5 arrives, u1/u6 stay."""
    days = {
        "2024-05-01": {"user_id": ["u1"], "level": ["A"], "score": [1.0]},
        "2024-05-03": {
            "user_id": ["u1", "u2", "u3", "u4", "u6"],
            "level": ["A", "B", "C", "D", None],
            "score": [1.0, 2.0, 3.0, 4.0, None],
        },
        "2024-05-10": {
            "user_id": ["u1", "u2", "u3", "u5", "u6"],
            "level": ["A", "B", None, "E", None],
            "score": [1.0, 2.5, 3.0, 5.0, None],
        },
    }
    for day, columns in days.items():
        write_parquet(tmp_path / "snap" / f"dt={day}", columns)
    return tmp_path


def test_snapshot_table_compares_as_of_with_n_days_earlier(
    spark: SparkSession, snapshots: Path
) -> None:
    catalog = LakeCatalog(str(snapshots))

    assert _ids(changed_user_ids(spark, catalog, "snap", AS_OF, 7)) == ["u2", "u3", "u4", "u5"]


def test_snapshot_table_without_an_old_enough_snapshot_is_all_new(
    spark: SparkSession, snapshots: Path
) -> None:
    catalog = LakeCatalog(str(snapshots))

    changed = _ids(changed_user_ids(spark, catalog, "snap", AS_OF, 30))

    assert changed == ["u1", "u2", "u3", "u5", "u6"]


def test_a_lake_lagging_as_of_compares_its_latest_snapshot_with_one_n_days_before_it(
    spark: SparkSession, snapshots: Path
) -> None:
    """On 05-05 the latest snapshot is 05-03: a day's changes are those since the snapshot a
    day or more before 05-03 (05-01), not none because 05-04 resolves to 05-03 again."""
    catalog = LakeCatalog(str(snapshots))

    lagging = _ids(changed_user_ids(spark, catalog, "snap", date(2024, 5, 5), 1))
    assert lagging == ["u2", "u3", "u4", "u6"]
    assert _ids(changed_user_ids(spark, catalog, "snap", date(2024, 5, 5), 0)) == []


def test_snapshot_ids_are_text_rows_without_an_id_are_skipped_and_nested_values_compared(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Integer ids come out as text (they meet other tables' text ids in one union), a row
    without an id is no user, and a map column, which Spark cannot compare as it is, is
    compared as JSON."""
    props = pa.map_(pa.string(), pa.string())
    days = {
        "2024-05-09": ([1, 2, 3, None], [[("k", "a")], [("k", "b")], [], [("k", "z")]]),
        "2024-05-10": ([1, 2, 3, None], [[("k", "a")], [("k", "c")], [], [("k", "y")]]),
    }
    for day, (ids, maps) in days.items():
        write_parquet(
            tmp_path / "snap" / f"dt={day}",
            {"user_id": pa.array(ids, pa.int64()), "props": pa.array(maps, props)},
        )
    catalog = LakeCatalog(str(tmp_path))

    changed = changed_user_ids(spark, catalog, "snap", AS_OF, 1)
    assert dict(changed.dtypes) == {"user_id": "string"}
    assert _ids(changed) == ["2"]
    everyone = changed_user_ids(spark, catalog, "snap", AS_OF, 30)
    assert _ids(everyone) == ["1", "2", "3"]
    nobody = changed_user_ids(spark, catalog, "snap", AS_OF, 0)
    assert dict(nobody.dtypes) == {"user_id": "string"} and _ids(nobody) == []


def test_event_table_takes_users_of_the_last_n_days_partitions(
    spark: SparkSession, tmp_path: Path
) -> None:
    for day, users in [("2024-05-01", ["old"]), ("2024-05-08", ["a", "b"]), ("2024-05-10", ["a"])]:
        write_parquet(tmp_path / "logins" / f"dt={day}", {"user_id": users, "n": [1] * len(users)})
    write_parquet(tmp_path / "logins" / "dt=2024-05-11", {"user_id": ["future"], "n": [1]})
    catalog = LakeCatalog(str(tmp_path), event_tables=["logins"])

    assert _ids(changed_user_ids(spark, catalog, "logins", AS_OF, 2)) == ["a", "b"]
    assert _ids(changed_user_ids(spark, catalog, "logins", date(2024, 5, 7), 3)) == []
    with pytest.raises(LakeError, match=r"both as an event table .* and with a change column"):
        changed_user_ids(spark, catalog, "logins", AS_OF, 2, change_column="n")


def test_change_column_within_n_days_of_as_of(spark: SparkSession, tmp_path: Path) -> None:
    write_parquet(
        tmp_path / "accounts",
        {
            "user_id": ["edge", "inside", "today", "before", "after", "never"],
            "updated_at": [
                datetime(2024, 5, 3, 0, 0),
                datetime(2024, 5, 6, 12, 0),
                datetime(2024, 5, 10, 23, 59),
                datetime(2024, 5, 2, 23, 59),
                datetime(2024, 5, 11, 0, 0),
                None,
            ],
        },
    )
    catalog = LakeCatalog(str(tmp_path))

    changed = _ids(changed_user_ids(spark, catalog, "accounts", AS_OF, 7, "updated_at"))

    assert changed == ["edge", "inside", "today"]


def test_change_column_of_dates_stored_as_text(spark: SparkSession, tmp_path: Path) -> None:
    """The original system's `computed_date` is text; a value that is not a date counts as a
    change (recomputing a user who did not change writes nothing)."""
    write_parquet(
        tmp_path / "user_asset_summary",
        {
            "user_id": ["edge", "inside", "time", "before", "after", "never", "garbage"],
            "computed_date": [
                "2024-05-03",
                "2024-05-06",
                "2024-05-10 23:59:59",
                "2024-05-02",
                "2024-05-11",
                None,
                "soon",
            ],
        },
    )
    catalog = LakeCatalog(str(tmp_path))

    changed = changed_user_ids(spark, catalog, "user_asset_summary", AS_OF, 7, "computed_date")

    assert _ids(changed) == ["edge", "garbage", "inside", "time"]


def test_change_column_must_be_a_date(spark: SparkSession, tmp_path: Path) -> None:
    write_parquet(tmp_path / "t", {"user_id": ["a"], "version": [3]})
    catalog = LakeCatalog(str(tmp_path))

    with pytest.raises(LakeError, match="change column 'version' of table 't' is bigint"):
        changed_user_ids(spark, catalog, "t", AS_OF, 7, "version")


def test_unpartitioned_table_without_change_column_cannot_tell(
    spark: SparkSession, tmp_path: Path
) -> None:
    write_parquet(tmp_path / "t", {"user_id": ["a"]})

    with pytest.raises(LakeError, match="configure change_columns"):
        changed_user_ids(spark, LakeCatalog(str(tmp_path)), "t", AS_OF, 7)
