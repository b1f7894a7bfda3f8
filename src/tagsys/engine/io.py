"""Moving `user_tags` rows between the store and Spark, on the executors.

Existing rows are read in primary-key ranges in parallel; changed rows are written by each
partition in sorted, locked batches (see `tagsys.store.writer`). Nothing passes the driver.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tagsys import errors
from tagsys.engine.frames import COMPUTED, OLD_DETAILS_JSON, OLD_IDS_JSON, USER
from tagsys.errors import TagSysError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from tagsys.store.writer import WriteCounts, WriteRequest

EXISTING_SCHEMA = f"{USER} string, {OLD_IDS_JSON} string, {OLD_DETAILS_JSON} string"
COUNTS_SCHEMA = "inserted long, updated long, unchanged long"
_ROWS_PER_READ = 200_000


def existing_frame(
    spark: SparkSession,
    db_url: str,
    user_ids: Sequence[str] | None,
    partitions: int,
) -> DataFrame:
    """`user_tags` as (user_id, tag_ids JSON, tag_details JSON), read by the executors."""
    from tagsys.store.writer import id_bounds

    bounds = id_bounds(db_url)
    if bounds is None:
        return spark.createDataFrame([], EXISTING_SCHEMA)
    ranges = [bounds] if user_ids is not None else _split(bounds, partitions)
    seeds = spark.createDataFrame([(lo, hi) for lo, hi in ranges], "lo long, hi long").repartition(
        len(ranges)
    )
    users = list(user_ids) if user_ids is not None else None

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from tagsys.store.writer import read_existing_partition

        for batch in batches:
            for lo, hi in zip(
                batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True
            ):
                yield read_existing_partition(db_url, lo, hi, users)

    return seeds.mapInArrow(read, EXISTING_SCHEMA)


def _split(bounds: tuple[int, int], partitions: int) -> list[tuple[int, int]]:
    lo, hi = bounds
    count = max(1, min(partitions * 4, (hi - lo) // _ROWS_PER_READ + 1))
    step = (hi - lo + count) // count
    return [(lo + i * step, min(hi, lo + (i + 1) * step - 1)) for i in range(count)]


def write_candidates(candidates: DataFrame, request: WriteRequest, writers: int) -> WriteCounts:
    """Write every candidate row from the executors; return the summed counts.

    Each writer gets its own range of user ids, sorted: writers never wait on each other's
    row or gap locks (hash partitions made every batch span the whole key range: deadlocks).
    """
    from pyspark.sql import functions as F

    from tagsys.store.writer import WriteCounts

    frame = candidates.select(USER, COMPUTED).repartitionByRange(writers, USER)
    frame = frame.sortWithinPartitions(USER)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from tagsys.store.writer import write_rows

        def rows() -> Iterator[tuple[str, list[int]]]:
            for batch in batches:
                users = batch.column(0).to_pylist()
                tags = batch.column(1).to_pylist()
                yield from zip(users, tags, strict=True)

        counts = write_rows(request, rows())
        yield pa.RecordBatch.from_pydict(
            {
                "inserted": [counts.inserted],
                "updated": [counts.updated],
                "unchanged": [counts.unchanged],
            }
        )

    totals = (
        frame.mapInArrow(write, COUNTS_SCHEMA)
        .agg(
            F.sum("inserted").alias("inserted"),
            F.sum("updated").alias("updated"),
            F.sum("unchanged").alias("unchanged"),
        )
        .first()
    )
    if totals is None:
        return WriteCounts(0, 0, 0)
    return WriteCounts(
        int(totals["inserted"] or 0), int(totals["updated"] or 0), int(totals["unchanged"] or 0)
    )


@contextmanager
def product_errors() -> Iterator[None]:
    """Re-raise a product error raised inside a Spark task as itself, without the JVM trace."""
    try:
        yield
    except TagSysError:
        raise
    except Exception as exc:
        found = _TASK_ERROR.findall(str(exc))
        if not found:
            raise
        name, message = found[-1]
        cls = getattr(errors, name, None)
        if not (isinstance(cls, type) and issubclass(cls, TagSysError)):
            raise
        raise cls(message.strip()) from exc


_TASK_ERROR = re.compile(r"tagsys\.errors\.(\w+): (.*)")
