"""Which users an incremental run recomputes: those whose lake rows are new or changed."""

from __future__ import annotations

from datetime import date
from functools import reduce
from typing import TYPE_CHECKING

from tagsys.errors import LakeError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from tagsys.lake.catalog import LakeCatalog


def changed_users(
    spark: SparkSession,
    catalog: LakeCatalog,
    as_of: date,
    days: int,
    change_columns: dict[str, str] | None = None,
) -> DataFrame:
    """Distinct user ids changed in the last `days` days across every lake table."""
    from tagsys.lake.reader import changed_user_ids

    change_columns = change_columns or {}
    parts = []
    blind = []
    for name, table in sorted(catalog.tables.items()):
        column = change_columns.get(name)
        if column is None and table.partition_column is None:
            blind.append(name)
            continue
        parts.append(changed_user_ids(spark, catalog, name, as_of, days, change_column=column))
    if blind:
        raise LakeError(
            f"incremental runs cannot see changes in table(s) {', '.join(blind)}: they have no "
            "date partitions and no change column; configure change_columns "
            '(e.g. TAGSYS_CHANGE_COLUMNS=\'{"table": "updated_at"}\') or run task-all'
        )
    return reduce(lambda a, b: a.unionByName(b), parts).distinct()
