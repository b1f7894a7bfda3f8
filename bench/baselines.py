"""Baselines on the same lake: one Spark SQL statement, DuckDB, and the seed's naive job.

Each returns per-user sorted tag arrays; the timed part forces them into a cheap sink
(Spark's `noop` writer, DuckDB's count and sum of a hash).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import sqlgen
from bench.lake import parquet_glob
from bench.rulegen import BenchTag
from bench.store import Checksum
from tagsys.demo.generator import TABLES

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

Rows = Iterator[tuple[str, list[int]]]


def _tag_rules(tags: Sequence[BenchTag]) -> list[tuple[int, list[dict[str, Any]]]]:
    return [(t.tag_id, t.rules) for t in tags]


def spark_from(lake: Path) -> str:
    first, *rest = TABLES
    sql = f"parquet.`{lake / first}`"
    for table in rest:
        sql += f" FULL OUTER JOIN parquet.`{lake / table}` USING (user_id)"
    return sql


def duckdb_from(lake: Path) -> str:
    first, *rest = TABLES
    sql = f"read_parquet('{parquet_glob(lake, first)}') AS {first}"
    for table in rest:
        sql += f" FULL OUTER JOIN read_parquet('{parquet_glob(lake, table)}') AS {table} USING (user_id)"
    return sql


def spark_sql_text(lake: Path, tags: Sequence[BenchTag], as_of: date) -> str:
    array = sqlgen.tag_array(_tag_rules(tags), as_of, "spark")
    return f"SELECT user_id, {array} AS tags FROM {spark_from(lake)}"


def duckdb_sql_text(lake: Path, tags: Sequence[BenchTag], as_of: date) -> str:
    array = sqlgen.tag_array(_tag_rules(tags), as_of, "duckdb")
    return f"SELECT user_id, {array} AS tags FROM {duckdb_from(lake)}"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- Spark ----------------------------------------------------------------------------------

SPARK_CHECKSUM = (
    "count(*) AS users",
    "sum(size({tags})) AS tags",
    "sum(CAST(conv(substr(md5(concat({user}, ':', array_join({tags}, ','))), 1, 8), 16, 10)"
    " AS BIGINT)) AS digest",
)


def spark_checksum(frame: DataFrame, user: str = "user_id", tags: str = "tags") -> Checksum:
    from pyspark.sql import functions as F

    exprs = [e.format(user=user, tags=tags) for e in SPARK_CHECKSUM]
    row = frame.where(F.size(tags) > 0).selectExpr(*exprs).first()
    assert row is not None
    return Checksum(int(row["users"]), int(row["tags"] or 0), int(row["digest"] or 0))


def spark_rows(frame: DataFrame, user: str = "user_id", tags: str = "tags") -> Rows:
    table = frame.select(user, tags).toArrow()
    for user_id, ids in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True):
        yield user_id, list(ids or [])


def noop(frame: DataFrame) -> None:
    frame.write.format("noop").mode("overwrite").save()


def spark_sql_frame(
    spark: SparkSession, lake: Path, tags: Sequence[BenchTag], as_of: date
) -> DataFrame:
    return spark.sql(spark_sql_text(lake, tags, as_of))


def naive_frame(
    spark: SparkSession, lake: Path, tags: Sequence[BenchTag], as_of: date
) -> DataFrame:
    """The seed's job: one filtered query per tag over the joined tables, union, collect_set."""
    from pyspark.sql import functions as F

    joined = spark.sql(f"SELECT * FROM {spark_from(lake)}")
    parts = [
        joined.where(F.expr(sqlgen.tag_condition(t.rules, as_of, "spark"))).select(
            "user_id", F.lit(t.tag_id).alias("tag_id")
        )
        for t in tags
    ]
    union = reduce(lambda a, b: a.unionAll(b), parts)
    return union.groupBy("user_id").agg(F.sort_array(F.collect_set("tag_id")).alias("tags"))


def naive_rows(frame: DataFrame) -> Rows:
    for row in frame.toLocalIterator(prefetchPartitions=True):
        yield row["user_id"], list(row["tags"])


# --- DuckDB ---------------------------------------------------------------------------------


def duckdb_connection(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    import duckdb

    conn = duckdb.connect()
    if threads:
        conn.execute(f"SET threads = {int(threads)}")
    return conn


def duckdb_sink(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    conn.execute(f"SELECT count(*), sum(hash(user_id, tags)) FROM ({sql})").fetchall()


def duckdb_checksum(conn: duckdb.DuckDBPyConnection, sql: str) -> Checksum:
    digest = "('0x' || substr(md5(user_id || ':' || array_to_string(tags, ',')), 1, 8))::BIGINT"
    row = conn.execute(
        f"SELECT count(*), sum(len(tags)), sum({digest}) FROM ({sql}) WHERE len(tags) > 0"
    ).fetchall()[0]
    return Checksum(int(row[0]), int(row[1] or 0), int(row[2] or 0))


def duckdb_rows(conn: duckdb.DuckDBPyConnection, sql: str, order: bool = False) -> Rows:
    query = f"SELECT user_id, tags FROM ({sql})" + (" ORDER BY user_id" if order else "")
    reader = conn.sql(query).to_arrow_reader(100_000)
    for batch in reader:
        users = batch.column(0).to_pylist()
        tags = batch.column(1).to_pylist()
        for user_id, ids in zip(users, tags, strict=True):
            yield user_id, list(ids or [])
