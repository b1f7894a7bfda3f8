"""A small lake schema shared by the rule tests, and a fixture evaluating columns on Spark."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest

from tagsys.lake.reader import rule_value
from tagsys.lake.schema import LakeColumn, LakeSchema

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession

AS_OF = date(2024, 3, 15)

COLUMNS = (
    LakeColumn("acct", "total_asset_value", "number", "bigint"),
    LakeColumn("acct", "balance", "number", "double"),
    LakeColumn("acct", "kyc_status", "string", "string"),
    LakeColumn("acct", "name", "string", "string"),
    LakeColumn("acct", "opened", "date", "date"),
    LakeColumn("acct", "last_login", "date", "timestamp"),
    LakeColumn("acct", "vip", "boolean", "boolean"),
    LakeColumn("acct", "labels", None, "array<string>"),
    LakeColumn("trade", "trade_count_30d", "number", "bigint"),
    LakeColumn("trade", "name", "string", "string"),
)

Rows = Sequence[Mapping[str, Any]]
SparkEval = Callable[[Sequence[LakeColumn], Rows, Sequence["Column"]], list[list[Any]]]


@pytest.fixture(scope="session")
def schema() -> LakeSchema:
    return LakeSchema.from_columns(COLUMNS)


@pytest.fixture(scope="session")
def as_of() -> date:
    return AS_OF


@pytest.fixture(scope="session")
def spark_eval(spark: SparkSession) -> SparkEval:
    """Evaluate columns over a tiny frame (one column per alias, as the lake reader gives
    them to rules: `rule_value`) in ONE Spark job.

    Returns, per input row in order, the value of every column.
    """

    def run(columns: Sequence[LakeColumn], rows: Rows, tests: Sequence[Column]) -> list[list[Any]]:
        from pyspark.sql import functions as F

        named = [(c.alias.replace("`", "``"), c) for c in columns]
        ddl = ", ".join(f"`{name}` {c.data_type}" for name, c in named)
        data = [(i, *(row.get(c.alias) for c in columns)) for i, row in enumerate(rows)]
        frame = spark.createDataFrame(data, schema=f"_row int, {ddl}")
        as_read = [rule_value(F.col(f"`{q}`"), c.data_type).alias(c.alias) for q, c in named]
        out = frame.select("_row", *as_read).select(
            "_row", *[test.alias(f"t{i}") for i, test in enumerate(tests)]
        )
        collected = sorted(out.collect(), key=lambda r: r["_row"])
        return [[r[f"t{i}"] for i in range(len(tests))] for r in collected]

    return run
