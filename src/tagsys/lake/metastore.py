"""Describing catalog tables (Hive metastore, Glue Data Catalog) through a SparkSession."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tagsys.errors import LakeError
from tagsys.lake.discovery import parse_partition_date
from tagsys.lake.kinds import spark_kind
from tagsys.lake.schema import LakeColumn
from tagsys.lake.tables import LakeTable

if TYPE_CHECKING:
    from datetime import date

    from pyspark.sql import SparkSession


def describe_catalog_table(
    spark: SparkSession, name: str, catalog_table: str, user_id_column: str
) -> LakeTable:
    """The lake table `name` backed by `catalog_table` (`db.table`); schema from the catalog."""
    try:
        schema = spark.table(catalog_table).schema
        partition_names = [
            c.name for c in spark.catalog.listColumns(catalog_table) if c.isPartition
        ]
    except Exception as exc:  # AnalysisException and Py4J errors alike
        raise LakeError(
            f"cannot open catalog table '{catalog_table}' (lake table '{name}'): "
            f"{str(exc).splitlines()[0]}; check the catalog_tables setting and the "
            "metastore / Glue Data Catalog permissions"
        ) from exc
    partition_column = _date_partition_column(name, catalog_table, partition_names)
    columns: dict[str, LakeColumn] = {}
    for spark_field in schema.fields:
        if spark_field.name != partition_column:
            kind, data_type = spark_kind(spark_field.dataType)
            columns[spark_field.name] = LakeColumn(name, spark_field.name, kind, data_type)
    if user_id_column not in columns:
        raise LakeError(
            f"catalog table '{catalog_table}' (lake table '{name}') has no user id column "
            f"'{user_id_column}'; its columns: {', '.join(columns)}"
        )
    partitions = _partitions(spark, catalog_table, partition_column) if partition_column else {}
    return LakeTable(
        name=name,
        columns=columns,
        user_id_column=user_id_column,
        catalog_table=catalog_table,
        partition_column=partition_column,
        partitions=partitions,
    )


def _date_partition_column(name: str, catalog_table: str, partition_names: list[str]) -> str | None:
    if len(partition_names) > 1:
        raise LakeError(
            f"catalog table '{catalog_table}' (lake table '{name}') is partitioned by "
            f"{', '.join(partition_names)}; only one date partition column is supported"
        )
    return partition_names[0] if partition_names else None


def _partitions(spark: SparkSession, catalog_table: str, column: str) -> dict[date, str]:
    partitions: dict[date, str] = {}
    for row in spark.sql(f"SHOW PARTITIONS {_quoted(catalog_table)}").collect():
        value = row[0].partition("=")[2]
        day = parse_partition_date(value)
        if day is None:
            raise LakeError(
                f"catalog table '{catalog_table}' has partition '{row[0]}' whose value is not "
                f"a date; only date partitions of '{column}' are supported"
            )
        partitions[day] = value
    return partitions


def _quoted(catalog_table: str) -> str:
    return ".".join("`" + part.replace("`", "``") + "`" for part in catalog_table.split("."))
