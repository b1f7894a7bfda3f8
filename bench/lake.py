"""The benchmark lake: the demo generator's three tables, cached by parameters."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from tagsys.demo.generator import TABLES, generate_lake

CACHE = Path(__file__).resolve().parent / ".cache"


def lake_dir(users: int, seed: int, as_of: date, cache: Path = CACHE) -> Path:
    return cache / f"lake-u{users}-s{seed}-{as_of.isoformat()}"


def ensure_lake(users: int, seed: int, as_of: date, cache: Path = CACHE) -> tuple[Path, bool]:
    """The lake folder for these parameters, generated once; True when it was just generated."""
    target = lake_dir(users, seed, as_of, cache)
    marker = target.with_name(target.name + ".complete")
    if marker.exists() and target.is_dir():
        return target, False
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    generate_lake(partial, users, as_of, seed=seed)
    partial.rename(target)
    marker.write_text("ok\n")
    return target, True


def parquet_glob(root: Path, table: str) -> str:
    return str(root / table / "*.parquet")


def table_paths(root: Path) -> dict[str, str]:
    return {table: str(root / table) for table in TABLES}
