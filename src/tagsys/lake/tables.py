"""What the catalog knows of one table, and which rows of it a run reads (a snapshot)."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from tagsys.errors import LakeError
from tagsys.lake.schema import LakeColumn


@dataclass(frozen=True)
class TableSnapshot:
    """The rows of one table a run reads.

    Folder tables are read from `paths` (the table folder, or partition folders, so no other
    partition is listed). Catalog tables are read with `spark.table(catalog_table)` filtered to
    `partition_values` of `partition_column` when those are set.
    """

    table: str
    user_id_column: str
    paths: tuple[str, ...] = ()
    catalog_table: str | None = None
    partition_column: str | None = None
    partitions: tuple[date, ...] = ()
    partition_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LakeTable:
    """One lake table: its columns (from the data), where it lives and its date partitions.

    `partitions` maps each partition date to its raw value (`2024-01-31` of `dt=2024-01-31`).
    `event_partitioned`: partitions hold the events of their day, not a daily snapshot.
    """

    name: str
    columns: Mapping[str, LakeColumn]
    user_id_column: str
    location: str | None = None
    catalog_table: str | None = None
    partition_column: str | None = None
    partitions: Mapping[date, str] = field(default_factory=dict)
    event_partitioned: bool = False

    @property
    def partition_dates(self) -> tuple[date, ...]:
        return tuple(sorted(self.partitions))

    @property
    def rule_columns(self) -> list[LakeColumn]:
        """Columns a rule may name: all but the user id (the partition column is not listed)."""
        return [c for n, c in self.columns.items() if n != self.user_id_column]

    @property
    def where(self) -> str:
        return f"catalog table {self.catalog_table}" if self.catalog_table else f"{self.location}"

    def partition_on_or_before(self, as_of: date) -> date:
        """The partition of `as_of`, or the latest one before it; LakeError if there is none."""
        dates = self.partition_dates
        index = bisect.bisect_right(dates, as_of)
        if index == 0:
            raise LakeError(
                f"table '{self.name}' has no partition on or before {as_of.isoformat()}: its "
                f"earliest {self.partition_column} partition is {dates[0].isoformat()} "
                f"({self.where}); run with a later --as-of or load older data"
            )
        return dates[index - 1]

    def partitions_between(self, start: date, end: date) -> tuple[date, ...]:
        """Partition dates d with start <= d <= end."""
        return tuple(d for d in self.partition_dates if start <= d <= end)

    def snapshot(self, partitions: tuple[date, ...] | None = None) -> TableSnapshot:
        """The rows to read: the given partitions, or the whole table if it is unpartitioned."""
        if self.partition_column is None or partitions is None:
            paths: tuple[str, ...] = (self.location,) if self.location else ()
            return TableSnapshot(self.name, self.user_id_column, paths, self.catalog_table)
        values = tuple(self.partitions[d] for d in partitions)
        paths = ()
        if self.location:
            paths = tuple(f"{self.location}/{self.partition_column}={v}" for v in values)
        return TableSnapshot(
            table=self.name,
            user_id_column=self.user_id_column,
            paths=paths,
            catalog_table=self.catalog_table,
            partition_column=self.partition_column,
            partitions=partitions,
            partition_values=values,
        )
