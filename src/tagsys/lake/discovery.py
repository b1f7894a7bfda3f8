"""Discovering folder tables with pyarrow only: one folder per table, Parquet inside,
optionally Hive-partitioned by a date (`dt=YYYY-MM-DD`). No Spark is started."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tagsys.errors import LakeError
from tagsys.lake.filesystem import LakeRoot, list_dir
from tagsys.lake.kinds import arrow_kind
from tagsys.lake.schema import LakeColumn
from tagsys.lake.tables import LakeTable

_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")


def discover_tables(root: LakeRoot, user_id_column: str) -> dict[str, LakeTable]:
    """Every table folder under the root, by name."""
    folders = [i for i in list_dir(root, root.path) if i.type == pafs.FileType.Directory]
    return {f.base_name: describe_folder(root, f.base_name, user_id_column) for f in folders}


def describe_folder(root: LakeRoot, name: str, user_id_column: str) -> LakeTable:
    entries = list_dir(root, root.fs_path(name))
    partition_column, partitions = _date_partitions(root, name, entries)
    data_folder = (
        root.fs_path(name, f"{partition_column}={partitions[max(partitions)]}")
        if partition_column
        else root.fs_path(name)
    )
    schema = _read_footer(root, _first_data_file(root, data_folder))
    columns = _columns(name, schema, exclude=partition_column)
    if user_id_column not in columns:
        raise LakeError(
            f"table '{name}' ({root.uri_of(name)}) has no user id column '{user_id_column}'; "
            f"its columns: {', '.join(columns) or '(none)'}; check the user_id_column setting "
            "or remove the folder from the lake"
        )
    return LakeTable(
        name=name,
        columns=columns,
        user_id_column=user_id_column,
        location=root.uri_of(name),
        partition_column=partition_column,
        partitions=partitions,
    )


def parse_partition_date(value: str) -> date | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def _date_partitions(
    root: LakeRoot, name: str, entries: list[pafs.FileInfo]
) -> tuple[str | None, dict[date, str]]:
    folders = [e for e in entries if e.type == pafs.FileType.Directory]
    if not folders:
        return None, {}
    keys = {f.base_name.partition("=")[0] for f in folders}
    if len(keys) != 1 or any("=" not in f.base_name for f in folders):
        raise LakeError(
            f"table '{name}' ({root.uri_of(name)}) has sub-folders that are not one date "
            f"partitioning ({', '.join(f.base_name for f in folders[:5])}); expected "
            "folders like dt=YYYY-MM-DD only"
        )
    if any(e.type == pafs.FileType.File for e in entries):
        raise LakeError(
            f"table '{name}' ({root.uri_of(name)}) mixes data files with partition folders; "
            "move the files into a partition folder"
        )
    partitions: dict[date, str] = {}
    for folder in folders:
        value = folder.base_name.partition("=")[2]
        day = parse_partition_date(value)
        if day is None:
            raise LakeError(
                f"table '{name}' has partition folder '{folder.base_name}' whose value is not "
                "a date (YYYY-MM-DD or YYYYMMDD); only date partitions are supported"
            )
        partitions[day] = value
    return keys.pop(), partitions


def _first_data_file(root: LakeRoot, folder: str) -> str:
    files = [e for e in list_dir(root, folder) if e.type == pafs.FileType.File and e.size]
    if not files:
        raise LakeError(
            f"lake folder '{root.uri_for(folder)}' holds no data files; check that the table "
            "was written completely"
        )
    return str(files[0].path)


def _read_footer(root: LakeRoot, path: str) -> pa.Schema:
    try:
        return pq.read_schema(path, filesystem=root.filesystem)
    except (OSError, pa.ArrowException) as exc:
        raise LakeError(
            f"cannot read the Parquet footer of '{root.uri_for(path)}': {exc}; check that it is "
            "a complete Parquet file (remove stray non-Parquet files from table folders)"
        ) from exc


def _columns(table: str, schema: pa.Schema, exclude: str | None) -> dict[str, LakeColumn]:
    columns: dict[str, LakeColumn] = {}
    for arrow_field in schema:
        if arrow_field.name == exclude:
            continue
        kind, data_type = arrow_kind(arrow_field.type)
        columns[arrow_field.name] = LakeColumn(table, arrow_field.name, kind, data_type)
    return columns
