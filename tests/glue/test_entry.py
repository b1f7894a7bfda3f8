"""`execute_glue_job` and the job script's failure path, without AWS settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tagsys.errors import ConfigError, UsageError

ROOT = Path(__file__).resolve().parents[2]


def test_health_without_aws_settings_names_what_is_missing() -> None:
    from glue_entry import execute_glue_job  # the seed's module name

    with pytest.raises(ConfigError) as caught:
        execute_glue_job("health", "glue-dev")
    message = str(caught.value)
    for name in ("glue-dev", "TAGSYS_DB_URL", "DEV_MYSQL_", "TAGSYS_DB_SECRET_ID"):
        assert name in message


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"mode": "drop"}, "not a Glue job mode"),
        ({"mode": "task-tags"}, "task-tags needs tag ids"),
        ({"mode": "task-users", "tag_ids": [1]}, "task-users needs user ids"),
        ({"mode": "incremental"}, "incremental needs days"),
    ],
)
def test_bad_requests_are_refused_before_anything_runs(kwargs: dict, says: str) -> None:
    from tagsys.glue import execute_glue_job

    with pytest.raises(UsageError, match=says):
        execute_glue_job(environment="glue-dev", **kwargs)


@pytest.mark.parametrize(
    "script", ["environments/glue-dev/glue_job.py", "src/tagsys/glue/job_script.py"]
)
def test_job_script_fails_with_a_message_and_no_traceback(script: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, str(ROOT / script), "--env", "glue-dev", "--mode", "health"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.startswith("Error: ") and "Traceback" not in out.stderr + out.stdout
    assert "TAGSYS_DB_URL" in out.stderr and "DEV_MYSQL_" in out.stderr


@pytest.mark.spark
def test_execute_glue_job_returns_the_run_summary(spark, sqlite_url: str, tmp_path: Path) -> None:
    from datetime import date

    from glue_entry import execute_glue_job
    from tagsys.demo.generator import generate_lake
    from tagsys.demo.loader import load_seed_tags
    from tagsys.store.migrate import upgrade

    lake = tmp_path / "lake"
    generate_lake(lake, 60, date(2024, 6, 30), seed=3)
    upgrade(sqlite_url)
    load_seed_tags(sqlite_url)
    where = {"db_url": sqlite_url, "lake_uri": str(lake), "spark": spark}
    result = execute_glue_job(
        "task-tags", "local", tag_ids=[1, 3], as_of=date(2024, 6, 30), **where
    )
    assert result and result.summary is not None and result.summary.succeeded
    assert result.to_dict()["mode"] == "task-tags" and "rows inserted" in result.report
    dry = execute_glue_job("task-all", "local", dry_run=True, as_of=date(2024, 6, 30), **where)
    assert dry.summary is not None and dry.summary.dry_run and dry.summary.mode == "task-all"
    with pytest.raises(UsageError, match="999"):
        execute_glue_job("task-tags", "local", tag_ids=[999], **where)
