"""How many shuffle partitions a run uses: from the size of its data, not a fixed number.

A run's shuffles (the lake's rows grouped by user, the stored rows joined to them) keep a
partition's users in memory at once. A fixed count that suits 1M users gives each task 10x
the users at 10M, under the same heap; so the count grows with the larger of two sizes known
before anything is read: the lake files the run reads (Spark's own estimate, from the file
listing) and the stored rows (their count sizes the stored-row reads already). The session's
`spark.sql.shuffle.partitions` stays the floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

USERS_PER_PARTITION = 125_000
"""Stored rows per partition (the 1M-user benchmark's 8 partitions on 2 cores)."""
LAKE_BYTES_PER_PARTITION = 4 << 20
"""Parquet bytes per partition (the 1M-user benchmark's lake is 34 MB)."""
MAX_PARTITIONS = 8192
_UNKNOWN_SIZE = 1 << 62
"""Spark's estimate for a table it knows nothing of is about Long.MaxValue: not a size."""


def shuffle_partitions(
    spark: SparkSession, lake: Sequence[DataFrame], stored_rows: int, listed_users: bool
) -> int:
    """The partition count of a run's shuffles (the floor only for a list of users)."""
    floor = int(spark.conf.get("spark.sql.shuffle.partitions") or 200)
    if listed_users:
        return floor
    by_lake = math.ceil(lake_bytes(lake) / LAKE_BYTES_PER_PARTITION)
    by_rows = math.ceil(stored_rows / USERS_PER_PARTITION)
    return max(floor, min(MAX_PARTITIONS, max(by_lake, by_rows)))


def lake_bytes(frames: Sequence[DataFrame]) -> int:
    """Spark's estimate of the bytes the frames read (file sizes; nothing is read)."""
    total = 0
    for frame in frames:
        estimate = frame._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()
        size = int(str(estimate))  # a Scala BigInt, or already an int through Py4J
        if size < _UNKNOWN_SIZE:
            total += size
    return total
