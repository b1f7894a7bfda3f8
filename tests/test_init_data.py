"""The seed's data commands (environments/local/init_data.sh), without Docker."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "environments" / "local" / "init_data.sh"


def run(command: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSYS_", "MYSQL_"))}
    # the interpreter running these tests, not whatever .venv holds
    env.update(TAGSYS_DATA_DIR=str(data), DEMO_USERS="120", TAGSYS_PYTHON=sys.executable)
    args = [str(SCRIPT)] + ([command] if command else [])
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_default_clean_and_partial_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "tagsys.db"
    result = run("", data)
    assert result.returncode == 0, result.stderr
    assert count(db, "tag_definition") == 8 and count(db, "tag_rules") == 8
    assert (data / "lake" / "user_asset_summary").is_dir()

    assert run("clean", data).returncode == 0
    assert count(db, "tag_definition") == 0
    assert not (data / "lake" / "user_asset_summary").exists()

    assert run("db-only", data).returncode == 0
    assert count(db, "tag_definition") == 8
    assert not (data / "lake" / "user_basic_info").exists()
    assert run("data-only", data).returncode == 0
    assert (data / "lake" / "user_basic_info").is_dir()
    assert run("reset", data).returncode == 0
    assert count(db, "tag_definition") == 8

    bad = run("nonsense", data)
    assert bad.returncode == 2 and "usage" in bad.stderr
