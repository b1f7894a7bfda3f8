"""The lake catalog: which tables exist, their columns (from the data) and partitions, and
which rows of a table a run with a given as_of reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

from tagsys.errors import LakeError
from tagsys.lake.discovery import discover_tables
from tagsys.lake.filesystem import S3Options, open_root
from tagsys.lake.schema import LakeSchema
from tagsys.lake.tables import LakeTable, TableSnapshot

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class LakeCatalog:
    """Tables of a lake root (folders, discovered with pyarrow) and of a metastore.

    Discovery is lazy and cached: the first call that needs the tables lists the root and reads
    one Parquet footer per table. Catalog tables (`name -> "db.table"`) are described through
    Spark, started only then: pass a SparkSession or a function returning one as `spark`.
    `event_tables` names date-partitioned tables whose partitions hold events of their day
    rather than daily snapshots (this matters only to incremental change detection).
    """

    def __init__(
        self,
        root: str | None,
        user_id_column: str = "user_id",
        *,
        s3: S3Options | None = None,
        catalog_tables: Mapping[str, str] | None = None,
        event_tables: Iterable[str] = (),
        spark: SparkSession | Callable[[], SparkSession] | None = None,
    ) -> None:
        self.root = root
        self.user_id_column = user_id_column
        self.s3 = s3
        self.catalog_tables = dict(catalog_tables or {})
        self.event_tables = frozenset(event_tables)
        self._spark = spark
        self._tables: dict[str, LakeTable] | None = None

    @property
    def tables(self) -> Mapping[str, LakeTable]:
        tables = self._tables  # one read: another thread may `refresh` meanwhile
        if tables is None:
            tables = self._tables = self._discover()
        return tables

    def refresh(self) -> None:
        """Forget what was discovered; the next call lists the lake again."""
        self._tables = None

    def table(self, name: str) -> LakeTable:
        if name not in self.tables:
            raise LakeError(
                f"unknown lake table '{name}'; tables: {', '.join(sorted(self.tables))}"
            )
        return self.tables[name]

    def schema(self) -> LakeSchema:
        """Every rule field of the lake (user id and partition columns are not rule fields)."""
        tables = {name: {c.name: c for c in t.rule_columns} for name, t in self.tables.items()}
        return LakeSchema(tables=tables, user_id_column=self.user_id_column)

    def spark(self) -> SparkSession:
        if self._spark is None:
            raise LakeError(
                "catalog tables are configured "
                f"({', '.join(f'{k}={v}' for k, v in self.catalog_tables.items())}) but no "
                "SparkSession was given to the lake catalog to read them"
            )
        if callable(self._spark):
            self._spark = self._spark()
        return self._spark

    def snapshot_for(self, table: str, as_of: date) -> TableSnapshot:
        """What a run on `as_of` reads: the partition of as_of, or the latest one before it."""
        lake_table = self.table(table)
        if lake_table.partition_column is None:
            return lake_table.snapshot()
        return lake_table.snapshot((lake_table.partition_on_or_before(as_of),))

    def snapshot_between(self, table: str, as_of: date, days: int) -> TableSnapshot:
        """The partitions dated as_of - days ... as_of (inclusive), of a partitioned table."""
        lake_table = self.table(table)
        if lake_table.partition_column is None:
            raise LakeError(f"table '{table}' is not partitioned by date")
        return lake_table.snapshot(lake_table.partitions_between(as_of - timedelta(days), as_of))

    def _discover(self) -> dict[str, LakeTable]:
        tables: dict[str, LakeTable] = {}
        if self.root is not None:
            tables.update(discover_tables(open_root(self.root, self.s3), self.user_id_column))
        tables.update(self._describe_catalog_tables())
        if not tables:
            raise LakeError(
                f"no tables found in the lake root '{self.root}'; it should hold one folder "
                "per table with Parquet files inside (e.g. generate the demo data), or "
                "configure catalog_tables"
            )
        return self._mark_event_tables(tables)

    def _describe_catalog_tables(self) -> dict[str, LakeTable]:
        if not self.catalog_tables:
            return {}
        from tagsys.lake.metastore import describe_catalog_table

        spark = self.spark()
        return {
            name: describe_catalog_table(spark, name, catalog_table, self.user_id_column)
            for name, catalog_table in self.catalog_tables.items()
        }

    def _mark_event_tables(self, tables: dict[str, LakeTable]) -> dict[str, LakeTable]:
        for name in sorted(self.event_tables):
            table = tables.get(name)
            if table is None or table.partition_column is None:
                raise LakeError(
                    f"event_tables names '{name}', which is not a date-partitioned lake table; "
                    f"partitioned tables: "
                    f"{', '.join(n for n, t in sorted(tables.items()) if t.partition_column)}"
                )
            tables[name] = replace(table, event_partitioned=True)
        return tables
