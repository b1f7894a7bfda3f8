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
