"""Writing an audience's user ids to CSV or Parquet, locally or to S3: streamed in chunks,
to a temporary file first, so a failed export leaves nothing half-written at its path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tagsys.errors import UsageError
from tagsys.lake.filesystem import is_s3

FORMATS = ("csv", "parquet")
SCHEMA = pa.schema([pa.field("user_id", pa.string(), nullable=False)])


def export_format(path: str, fmt: str | None) -> str:
    """`fmt`, else the path's extension."""
    chosen = (fmt or Path(path.split("?")[0]).suffix.lstrip(".")).lower()
    if chosen not in FORMATS:
        raise UsageError(
            f"export to {path}: say the format (csv or parquet) or end the path in .csv or .parquet"
        )
    return chosen


Chunk: TypeAlias = list[str] | pa.Array


def write(path: str, fmt: str, chunks: Iterable[Chunk], s3_client: Any = None) -> int:
    """Write the user ids of `chunks` to `path` (a local path or s3://bucket/key); rows written."""
    if is_s3(path):
        return _to_s3(path, fmt, chunks, s3_client)
    target = Path(path).expanduser().resolve()
    _check_local(target)
    try:
        with _temporary(target.parent, target.name) as temp:
            rows = _write_file(temp, fmt, chunks)
            os.replace(temp, target)
    except OSError as exc:
        raise UsageError(f"export to {target}: cannot write there ({exc.strerror or exc})") from exc
    return rows


def _check_local(target: Path) -> None:
    if target.is_dir():
        raise UsageError(f"export to {target}: that is a directory; give a file name")
    if not target.parent.is_dir():
        raise UsageError(f"export to {target}: the directory {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise UsageError(f"export to {target}: the directory {target.parent} is not writable")


@contextmanager
def _temporary(directory: Path, name: str) -> Iterator[Path]:
    handle, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    os.close(handle)
    try:
        yield Path(temp)
    finally:
        Path(temp).unlink(missing_ok=True)


def _write_file(target: Path, fmt: str, chunks: Iterable[Chunk]) -> int:
    rows = 0
    writer: Any = (
        pq.ParquetWriter(target, SCHEMA, compression="zstd")
        if fmt == "parquet"
        else pacsv.CSVWriter(target, SCHEMA)
    )
    with writer:
        for chunk in chunks:
            if len(chunk):
                column = chunk if isinstance(chunk, pa.Array) else pa.array(chunk, pa.string())
                writer.write_table(pa.table({"user_id": column}, schema=SCHEMA))
                rows += len(chunk)
    return rows


def _to_s3(path: str, fmt: str, chunks: Iterable[Chunk], client: Any) -> int:
    if client is None:
        raise UsageError(f"export to {path}: S3 needs boto3 (pip install 'tagsys[aws]')")
    bucket, _, key = path.split("://", 1)[1].partition("/")
    if not bucket or not key:
        raise UsageError(f"export to {path}: expected s3://bucket/key")
    with _temporary(Path(tempfile.gettempdir()), "audience") as temp:
        rows = _write_file(temp, fmt, chunks)
        try:
            client.upload_file(str(temp), bucket, key)
        except Exception as exc:  # boto3 raises several unrelated types
            raise UsageError(f"export to {path}: S3 refused the upload ({exc})") from exc
    return rows
