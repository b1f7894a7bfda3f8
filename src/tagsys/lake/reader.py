"""Reading lake snapshots with Spark, and finding the users an incremental run recomputes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from functools import reduce
from typing import TYPE_CHECKING

from tagsys.errors import LakeError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from tagsys.lake.catalog import LakeCatalog
    from tagsys.lake.tables import LakeTable, TableSnapshot

USER_ID = "user_id"


def column_alias(table: str, column: str) -> str:
    """Same as LakeColumn.alias: the column's name in the engine's joined frame."""
    return f"{table}__{column}"


def read_snapshot(
    spark: SparkSession, snapshot: TableSnapshot, columns: Sequence[str]
) -> DataFrame:
    """The snapshot's rows: `user_id` plus each wanted column renamed to `table__column`.

    Only the wanted columns are read, and only the snapshot's partition folders are listed.
    User ids are compared as text (the store keeps them as text); a row without one belongs
    to no user and is skipped.
    """
    return select_snapshot(open_snapshot(spark, snapshot), snapshot, columns)


def open_snapshot(spark: SparkSession, snapshot: TableSnapshot) -> DataFrame:
    """The snapshot as Spark sees it (its schema is that of the files it reads; nothing is
    read yet): an older partition may lack columns that later ones have."""
    return _raw_frame(spark, snapshot)


def select_snapshot(frame: DataFrame, snapshot: TableSnapshot, columns: Sequence[str]) -> DataFrame:
    """`read_snapshot` on a frame from `open_snapshot`."""
    from pyspark.sql import functions as F

    wanted = [c for c in dict.fromkeys(columns) if c != snapshot.user_id_column]
    missing = [c for c in [snapshot.user_id_column, *wanted] if c not in frame.columns]
    if missing:
        raise LakeError(
            f"table '{snapshot.table}' has no column {', '.join(missing)} in "
            f"{_describe(snapshot)}; its columns: {', '.join(frame.columns)}"
        )
    user_id = F.col(snapshot.user_id_column).cast("string")
    types = dict(frame.dtypes)
    return frame.where(user_id.isNotNull()).select(
        user_id.alias(USER_ID),
        *(rule_value(F.col(c), types[c]).alias(column_alias(snapshot.table, c)) for c in wanted),
    )


def rule_value(column: Column, data_type: str) -> Column:
    """A lake value as rules see it: NaN in a floating column is a missing value (null), as
    pandas writes missing numbers; Spark alone orders NaN above every number. Once per value
    here, not in every condition (the reference evaluator: `rules.reference.lake_value`)."""
    from pyspark.sql import functions as F

    if data_type in ("double", "float"):
        return F.nanvl(column, F.lit(None).cast(data_type))
    return column


def find_duplicate_user_ids(frame: DataFrame, limit: int = 5) -> list[str]:
    """Up to `limit` user ids that occur more than once in `frame` (sorted; empty if none)."""
    from pyspark.sql import functions as F

    duplicates = (
        frame.groupBy(USER_ID).count().where(F.col("count") > 1).orderBy(USER_ID).limit(limit)
    )
    return [str(row[USER_ID]) for row in duplicates.collect()]


def changed_user_ids(
    spark: SparkSession,
    catalog: LakeCatalog,
    table: str,
    as_of: date,
    days: int,
    change_column: str | None = None,
) -> DataFrame:
    """Distinct `user_id`s whose rows of `table` are new or changed in the last `days` days.

    Which test applies (SPEC section 5, incremental runs), in this order:

    1. `change_column` given (e.g. `updated_at`, a date or timestamp column): users with a row
       of the as_of snapshot whose change date d has `as_of - days <= d <= as_of`.
    2. The table is in the catalog's `event_tables` (partitions hold the events of their
       day): users with rows in the partitions dated `as_of - days ... as_of`.
    3. The table is date-partitioned (daily snapshots): users whose row in the as_of snapshot
       (the latest on or before as_of) differs in any column (nulls compare equal) from their
       row in the latest snapshot at least `days` days older than it, or exists in only one of
       the two (new and removed users). When no snapshot is that old, every user of the as_of
       snapshot is new.

    An unpartitioned table without a change column cannot tell what changed: LakeError.
    Windows are inclusive at both ends, like `recent_days`, so back-to-back daily runs overlap
    by a day instead of leaving a gap.
    """
    if days < 0:
        raise LakeError(f"incremental days must be >= 0, got {days}")
    lake_table = catalog.table(table)
    if change_column is not None and lake_table.event_partitioned:
        raise LakeError(
            f"table '{table}' is configured both as an event table (TAGSYS_EVENT_TABLES) and "
            f"with a change column '{change_column}' (TAGSYS_CHANGE_COLUMNS): an event table's "
            "changes are its last N days' partitions; remove it from one of the two"
        )
    if change_column is not None:
        return _changed_by_column(spark, catalog, lake_table, as_of, days, change_column)
    if lake_table.event_partitioned:
        return _changed_by_events(spark, catalog, lake_table, as_of, days)
    if lake_table.partition_column is not None:
        return _changed_between_snapshots(spark, catalog, lake_table, as_of, days)
    raise LakeError(
        f"cannot tell which users of table '{table}' changed: it is neither date-partitioned "
        "nor has a change column; configure change_columns for it (e.g. updated_at)"
    )


def _changed_by_column(
    spark: SparkSession,
    catalog: LakeCatalog,
    lake_table: LakeTable,
    as_of: date,
    days: int,
    change_column: str,
) -> DataFrame:
    from pyspark.sql import functions as F

    from tagsys.lake.dates import text_to_date

    column = lake_table.columns.get(change_column)
    if column is None or column.kind not in ("date", "string"):
        found = f"is {column.data_type}" if column else "does not exist"
        raise LakeError(
            f"change column '{change_column}' of table '{lake_table.name}' {found}; it must "
            "be a date or timestamp column, or text holding dates (YYYY-MM-DD[ HH:MM:SS])"
        )
    frame = read_snapshot(spark, catalog.snapshot_for(lake_table.name, as_of), [change_column])
    value = F.col(column.alias)
    changed_on = F.to_date(text_to_date(value) if column.kind == "string" else value)
    window = changed_on.between(F.lit(as_of - timedelta(days)), F.lit(as_of))
    if column.kind == "string":  # text that is not a date: recompute the user, to be safe
        window = window | (value.isNotNull() & changed_on.isNull())
    return frame.where(window).select(USER_ID).distinct()


def _changed_by_events(
    spark: SparkSession, catalog: LakeCatalog, lake_table: LakeTable, as_of: date, days: int
) -> DataFrame:
    snapshot = catalog.snapshot_between(lake_table.name, as_of, days)
    if not snapshot.partitions:
        return _no_users(spark)
    return read_snapshot(spark, snapshot, []).distinct()


def _changed_between_snapshots(
    spark: SparkSession, catalog: LakeCatalog, lake_table: LakeTable, as_of: date, days: int
) -> DataFrame:
    from pyspark.sql import functions as F

    current = catalog.snapshot_for(lake_table.name, as_of)
    names = {c.name: c.kind is not None for c in lake_table.rule_columns}
    new = _read_available(spark, current, names)
    latest = current.partitions[0]  # a lake that lags as_of is compared from what it has
    earlier = [d for d in lake_table.partition_dates if d <= latest - timedelta(days)]
    if not earlier:
        return new.select(USER_ID).distinct()
    if earlier[-1] == latest:
        return _no_users(spark)
    old = _read_available(spark, lake_table.snapshot((earlier[-1],)), names)
    joined = new.alias("new").join(old.alias("old"), on=USER_ID, how="full_outer")
    differs: list[Column] = [F.col("new._present").isNull(), F.col("old._present").isNull()]
    differs += [~F.col(f"new.{n}").eqNullSafe(F.col(f"old.{n}")) for n in names]
    return joined.where(reduce(lambda a, b: a | b, differs)).select(USER_ID).distinct()


def _read_available(
    spark: SparkSession, snapshot: TableSnapshot, names: dict[str, bool]
) -> DataFrame:
    """The snapshot's rows with a user id (as text), and its columns `names` under their own
    names, null where a column is missing. A column whose flag is False (a map, array, struct
    or binary value, which cannot be compared as it is) comes as its JSON text."""
    from pyspark.sql import functions as F

    frame = _raw_frame(spark, snapshot)
    user_id = F.col(snapshot.user_id_column).cast("string")

    def value(name: str, plain: bool) -> Column:
        if name not in frame.columns:
            return F.lit(None) if plain else F.lit(None).cast("string")
        return F.col(name) if plain else F.to_json(F.struct(F.col(name)))

    return frame.where(user_id.isNotNull()).select(
        user_id.alias(USER_ID),
        F.lit(True).alias("_present"),
        *(value(n, plain).alias(n) for n, plain in names.items()),
    )


def _raw_frame(spark: SparkSession, snapshot: TableSnapshot) -> DataFrame:
    from pyspark.sql import functions as F

    try:
        if snapshot.catalog_table is None:
            if not snapshot.paths:
                raise LakeError(f"nothing to read for table '{snapshot.table}': no paths")
            return spark.read.parquet(*snapshot.paths)
        frame = spark.table(snapshot.catalog_table)
        if snapshot.partition_column is not None:
            frame = frame.where(F.col(snapshot.partition_column).isin(*snapshot.partition_values))
        return frame
    except LakeError:
        raise
    except Exception as exc:  # AnalysisException, Py4J errors: report them as lake errors
        raise LakeError(
            f"cannot read table '{snapshot.table}' from {_describe(snapshot)}: "
            f"{str(exc).splitlines()[0]}; check that the path exists and is readable"
        ) from exc


def _no_users(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], f"{USER_ID} string")


def _describe(snapshot: TableSnapshot) -> str:
    if snapshot.catalog_table is not None:
        return f"catalog table {snapshot.catalog_table}"
    return ", ".join(snapshot.paths)
