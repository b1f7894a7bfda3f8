"""Helpers for tests of the lake: tiny Parquet tables written with pyarrow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet(
    folder: Path, columns: Mapping[str, Sequence[Any] | pa.Array], name: str = "part-0.parquet"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pq.write_table(pa.table(dict(columns)), path)
    return path
