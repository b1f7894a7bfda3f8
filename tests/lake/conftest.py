"""Tiny lakes written with pyarrow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lake.lake_helpers import write_parquet


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """A lake with an unpartitioned table, a daily-snapshot table and Hadoop/Spark litter."""
    root = tmp_path / "lake"
    write_parquet(root / "profile", {"user_id": ["u1", "u2", "u3"], "age": [20, 35, 50]})
    (root / "profile" / "_SUCCESS").touch()
    (root / "profile" / ".gone.parquet.crc").write_bytes(b"crc")  # Hadoop checks real ones
    (root / "profile" / "_temporary" / "0").mkdir(parents=True)
    for day, score in [("2024-01-01", 1.0), ("2024-01-03", 3.0), ("2024-01-05", 5.0)]:
        write_parquet(
            root / "scores" / f"dt={day}",
            {"user_id": ["u1", "u2"], "score": [score, score + 0.5], "age": [1, 2]},
        )
    (root / "scores" / "_SUCCESS").touch()
    (root / ".hidden").mkdir()
    (root / "_staging").mkdir()
    (root / "README.txt").write_text("not a table")
    return root
