"""Moving `user_tags` rows between the store and Spark, on the executors.

Existing rows are read in primary-key ranges in parallel; changed rows are written by each
partition in sorted, locked batches (see `tagsys.store.writer`). Nothing passes the driver.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from tagsys import errors
from tagsys.engine.frames import (
    COMPUTED,
    NEW_DETAILS_JSON,
    NEW_IDS_JSON,
    OLD_DETAILS_DIGEST,
    OLD_IDS_JSON,
    USER,
)
from tagsys.errors import TagSysError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from tagsys.store.writer import WriteCounts, WriteRequest

EXISTING_SCHEMA = f"{USER} string, {OLD_IDS_JSON} string, {OLD_DETAILS_DIGEST} string"
COUNTS_SCHEMA = "inserted long, updated long, unchanged long"
_ROWS_PER_READ = 200_000
_MIN_ROWS_PER_READ = 50_000


def existing_frame(
    spark: SparkSession,
    db_url: str,
    user_ids: Sequence[str] | None,
    partitions: int,
    stats: tuple[int, int, int] | Literal["read"] | None = "read",
) -> DataFrame:
    """`user_tags` as (user_id, tag_ids JSON, tag_details JSON), read by the executors.
    `stats`: the table's (rows, min id, max id) if the caller has them (see `read_ranges`)."""
    ranges = read_ranges(db_url, user_ids, partitions, stats)
    if not ranges:
        return _no_rows(spark)
    users = list(user_ids) if user_ids is not None else None

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from tagsys.store.writer import read_existing_partition

        for batch in batches:
            for index in batch.column(0).to_pylist():
                lo, hi = ranges[index]
                yield read_existing_partition(db_url, lo, hi, users)

    # One task per range, numbered by the JVM: no Python job has to run before the reads (on
    # a cold start the Python workers then start alongside the lake's tasks, not before them).
    return spark.range(0, len(ranges), 1, len(ranges)).mapInArrow(read, EXISTING_SCHEMA)


def _no_rows(spark: SparkSession) -> DataFrame:
    """An empty frame of EXISTING_SCHEMA over an RDD of no partitions: no task, no Python worker."""
    return spark.createDataFrame(spark.sparkContext.emptyRDD(), EXISTING_SCHEMA)


def read_ranges(
    db_url: str,
    user_ids: Sequence[str] | None,
    partitions: int,
    stats: tuple[int, int, int] | Literal["read"] | None = "read",
) -> list[tuple[int, int]]:
    """The id ranges the executors read, sized by row counts: one per core when there are
    enough rows to share, and at most _ROWS_PER_READ rows each at any table size."""
    from tagsys.store.writer import id_buckets, id_stats

    if stats == "read":
        stats = id_stats(db_url)
    if stats is None:
        return []
    rows, low, high = stats
    if user_ids is not None:
        return [(low, high)]
    if high - low + 1 <= 2 * rows:  # dense ids: split the span, no query needed
        return _split((low, high), partitions)
    # Sparse ids (InnoDB burns one per upsert): count rows per run of ids, then group the runs.
    count = max(1, min(partitions, rows // _MIN_ROWS_PER_READ + 1), -(-rows // _ROWS_PER_READ))
    step = -(-rows // count)
    width = max(1, step // 4)  # a run of `width` ids holds at most `width` rows
    return _group_buckets(id_buckets(db_url, low, width), low, high, width, step)


def _group_buckets(
    buckets: list[tuple[int, int]], low: int, high: int, width: int, step: int
) -> list[tuple[int, int]]:
    """Consecutive ranges covering low..high, each holding at most `step` rows."""
    ranges: list[tuple[int, int]] = []
    start, held = low, 0
    for bucket, rows in buckets:
        if held and held + rows > step:
            end = low + bucket * width - 1
            ranges.append((start, end))
            start, held = end + 1, 0
        held += rows
    ranges.append((start, high))
    return ranges


def _split(bounds: tuple[int, int], partitions: int) -> list[tuple[int, int]]:
    """Id ranges of at most _ROWS_PER_READ ids (a task's memory stays bounded at any size),
    and one per core when there are enough rows to share."""
    lo, hi = bounds
    count = max(1, min(partitions, (hi - lo) // _MIN_ROWS_PER_READ + 1))
    count = max(count, (hi - lo) // _ROWS_PER_READ + 1)
    step = (hi - lo + count) // count
    return [(lo + i * step, min(hi, lo + (i + 1) * step - 1)) for i in range(count)]


def in_key_ranges(rows: DataFrame, writers: int | None) -> DataFrame:
    """`rows` as the writers take them: each partition a range of user ids, in user-id order.

    Inserts then fill the pages of `user_tags`' unique key and of the journal's keys one range
    after another, instead of every partition sweeping the whole of each index (which, once an
    index outgrows the database's buffer pool, reads it from disk once per partition), and
    concurrent writers lock disjoint ranges. `writers`: how many partitions write (1 for
    SQLite, else `TAGSYS_WRITE_PARTITIONS`); None keeps as many as Spark has.
    """
    count = writers if writers is not None else rows.rdd.getNumPartitions()
    return rows.repartitionByRange(count, USER).sortWithinPartitions(USER)


def write_candidates(candidates: DataFrame, request: WriteRequest) -> WriteCounts:
    """Write every candidate row from the executors, partition by partition; sum the counts.

    Users that had a row are merged under row locks; rows of users that had none come
    prepared from Spark and are bulk-inserted (see `write_partition`).
    """
    from pyspark.sql import functions as F

    from tagsys.store.writer import WriteCounts

    rows = candidates.select(
        USER,
        COMPUTED,
        F.col(NEW_IDS_JSON).alias("tag_ids"),
        F.col(NEW_DETAILS_JSON).alias("tag_details"),
    )

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from tagsys.store.writer import write_partition

        counts = write_partition(request, batches)
        yield pa.RecordBatch.from_pydict(
            {
                "inserted": [counts.inserted],
                "updated": [counts.updated],
                "unchanged": [counts.unchanged],
            }
        )

    totals = (
        rows.mapInArrow(write, COUNTS_SCHEMA)
        .agg(*[F.sum(c).alias(c) for c in ("inserted", "updated", "unchanged")])
        .first()
    )
    if totals is None:
        return WriteCounts(0, 0, 0)
    return WriteCounts(*(int(totals[c] or 0) for c in ("inserted", "updated", "unchanged")))


@contextmanager
def product_errors() -> Iterator[None]:
    """Spark failures as product errors: an error raised by our code inside a Spark task as
    itself (without the JVM trace), a lake file that vanished or broke as a LakeError naming
    it, anything else Spark raised as a SparkFailure with the JVM's own first line."""
    try:
        yield
    except TagSysError:
        raise
    except Exception as exc:
        if not type(exc).__module__.startswith(("py4j", "pyspark")):
            raise  # our own bug: the error boundary reports it as unexpected
        raise _product_error(str(exc)) from exc


def _product_error(text: str) -> TagSysError:
    found = _TASK_ERROR.findall(text)
    if found:
        name, message = found[-1]
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, TagSysError):
            return cls(message.strip())
    unreadable = _READ_FILE.search(text)
    if unreadable:
        path = unreadable.group("path").removeprefix("file://").removeprefix("file:")
        how = (
            "no longer exists"
            if "FILE_NOT_EXIST" in text or "FileNotFound" in text
            else ("cannot be read (truncated, or not Parquet)")
        )
        return errors.LakeError(
            f"the lake file {path} {how}: it changed while the run read it. The run stopped "
            "(what it committed is consistent); restore or rewrite that table, then run again"
        )
    return errors.SparkFailure(
        f"Spark failed: {_java_reason(text)}; the run stopped (what it committed is "
        "consistent). Run again with --log-level DEBUG for Spark's trace"
    )


def _java_reason(text: str) -> str:
    """The JVM exception's first line, without Py4J's 'An error occurred while calling'."""
    for line in text.splitlines():
        line = line.strip().removeprefix(": ")
        if line and not line.startswith(("An error occurred while calling", "at ")):
            return line[:400]
    return text[:400]


_TASK_ERROR = re.compile(r"tagsys\.errors\.(\w+): (.*)")
_READ_FILE = re.compile(
    r"(?:Encountered error while reading file|FileNotFoundException:(?: File)?)\s+(?P<path>\S+?)\.?(?:\s|$)"
)
