"""The command line: the seed's modes, exit codes and `Error:` messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from pyspark.sql import SparkSession

from tagsys.audiences.index import Snapshot
from tagsys.audiences.index import load as load_index
from tagsys.cli import main
from tagsys.demo.seed_tags import SEED_TAGS
from tagsys.store import migrate, repository
from tagsys.store.db import create_store_engine
from tests.oracle import computed_tags

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: SparkSession) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("TAGSYS_", "MYSQL_")):
            monkeypatch.delenv(name)
    return tmp_path


def cli(*args: str) -> int:
    return main(["--env", "local", *args])


def test_demo_health_list_validate_run_and_explain(workdir: Path, capsys) -> None:
    assert cli("--mode", "demo", "--users", "300", "--as-of", "2024-06-30") == 0
    assert (workdir / "data" / "tagsys.db").exists()
    assert (workdir / "data" / "lake" / "user_basic_info").is_dir()
    assert cli("--mode", "health") == 0
    out = capsys.readouterr().out
    assert "[ok] store" in out and "[ok] lake" in out and "[ok] spark" in out
    assert cli("--mode", "list-tasks") == 0
    out = capsys.readouterr().out
    assert "HighNetWorthUserTask" in out and "8 computable tags of 8" in out
    assert cli("--mode", "validate") == 0
    assert "every active rule is valid" in capsys.readouterr().out

    assert cli("--mode", "task-all", "--as-of", "2024-06-30", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    tags = {t.tag_id: (t.tag_name, t.tag_category, t.rules) for t in SEED_TAGS}
    computed = computed_tags(workdir / "data" / "lake", tags, date(2024, 6, 30))
    tagged = sum(1 for t in computed.values() if t)
    assert (summary["status"], summary["rows_inserted"], summary["rows_updated"]) == (
        "completed",
        tagged,
        0,
    )
    assert summary["users_evaluated"] == len(computed) == 300
    assert cli("--mode", "task-tags", "--tag-ids", "1,3,5", "--as-of", "2024-06-30", "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["rows_inserted"], again["rows_updated"]) == (0, 0)
    assert (
        cli(
            "--mode",
            "explain",
            "--tag-id",
            "1",
            "--user-id",
            "user_000001",
            "--as-of",
            "2024-06-30",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "total_asset_value" in out and "applies to user_000001" in out


def test_broken_rule_validate_and_run_exit_1(workdir: Path, capsys) -> None:
    assert cli("--mode", "demo", "--users", "200", "--as-of", "2024-06-30") == 0
    engine = create_store_engine(f"sqlite:///{workdir / 'data' / 'tagsys.db'}")
    bad = {
        "logic": "AND",
        "conditions": [{"field": "total_asset_valu", "operator": ">=", "value": 1}],
    }
    repository.replace_rules(bind=engine, tag_id=1, rules=[bad])
    engine.dispose()
    capsys.readouterr()
    assert cli("--mode", "validate") == 1
    out = capsys.readouterr().out
    assert "total_asset_valu" in out and "conditions[0].field" in out
    assert cli("--mode", "task-all", "--as-of", "2024-06-30") == 1
    out = capsys.readouterr().out
    assert "FAILED tag 1" in out and "total_asset_valu" in out


def test_errors_are_one_line_with_exit_code(workdir: Path, capsys) -> None:
    assert cli("--mode", "task-tags", "--tag-ids", "1", "--lake-uri", str(workdir / "none")) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "none" in err and "Traceback" not in err
    assert cli("--mode", "demo", "--users", "50") == 0
    capsys.readouterr()
    assert cli("--mode", "task-tags", "--tag-ids", "77") == 1
    assert "77" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli("--mode", "task-tags", "--tag-ids", "1,x")
    assert exit_info.value.code == 2
    assert main(["--env", "nowhere", "--mode", "health"]) == 1
    assert "unknown environment 'nowhere'" in capsys.readouterr().err


def test_health_fails_without_lake_and_hides_password(workdir: Path, capsys) -> None:
    code = cli("--mode", "health", "--db-url", "mysql+pymysql://u:s3cret@127.0.0.1:1/x")
    out = capsys.readouterr().out
    assert code == 1 and "[FAIL] store" in out and "[FAIL] lake" in out
    assert "s3cret" not in out


def test_main_py_runs_as_a_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSYS_", "MYSQL_"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--env", "local", "--mode", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert migrate.head_revision() in result.stdout
    assert (tmp_path / "data" / "tagsys.db").exists()


def count_rows(db: Path, table: str) -> int:
    engine = create_store_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def published_index(db: Path) -> Snapshot:
    engine = create_store_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return load_index(conn, None)
    finally:
        engine.dispose()


def test_clean_data_clears_tags_user_tags_and_runs(workdir: Path, capsys) -> None:
    assert cli("--mode", "demo", "--users", "60", "--as-of", "2024-06-30") == 0
    assert cli("--mode", "task-all", "--as-of", "2024-06-30") == 0
    db = workdir / "data" / "tagsys.db"
    assert count_rows(db, "user_tags") > 0 and count_rows(db, "tag_runs") == 1
    assert len(published_index(db).universe) == count_rows(db, "user_tags")
    capsys.readouterr()
    assert cli("--mode", "clean-data") == 0
    out = capsys.readouterr().out
    assert all(t in out for t in ("user_basic_info", "user_asset_summary", "user_activity_summary"))
    tables = ("user_tags", "tag_runs", "tag_rules", "tag_definition", "tag_category")
    assert {t: count_rows(db, t) for t in tables} == dict.fromkeys(tables, 0)
    index = published_index(db)  # the audiences went with the rows
    assert index.built and not index.universe and not any(index.bitmaps.values())
    assert not (workdir / "data" / "lake" / "user_basic_info").exists()
    assert cli("--mode", "migrate") == 0, "the schema stays"


def _main_py(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSYS_", "MYSQL_"))}
    base.pop("LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_debug_log_level_adds_the_traceback(tmp_path: Path) -> None:
    """The seed's LOG_LEVEL=DEBUG (like --log-level DEBUG) shows the traceback under the
    one-line error; without it there is only the line."""
    args = ("--env", "local", "--mode", "task-tags", "--tag-ids", "1", "--lake-uri", "missing")
    plain = _main_py(tmp_path, *args)
    debug = _main_py(tmp_path, *args, LOG_LEVEL="DEBUG")
    assert plain.returncode == debug.returncode == 1
    assert plain.stderr.splitlines()[-1].startswith("Error: ") and "missing" in plain.stderr
    assert "Traceback" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    assert "Error: " in debug.stderr
