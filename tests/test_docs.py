"""Docs that cannot drift: every mode and setting is in both READMEs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsys.cli import MODES
from tagsys.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "README.zh-CN.md"]
SEED_NAMED = {
    "mysql_host": "MYSQL_HOST",
    "mysql_port": "MYSQL_PORT",
    "mysql_user": "MYSQL_USER",
    "mysql_password": "MYSQL_PASSWORD",
    "mysql_database": "MYSQL_DATABASE",
    "s3_endpoint": "S3_ENDPOINT",
    "s3_access_key": "S3_ACCESS_KEY",
    "s3_secret_key": "S3_SECRET_KEY",
    "aws_region": "AWS_REGION",
    "env": "TAGSYS_ENV",
}
INTERNAL = {"glue_job_name"}


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.name)
def test_every_mode_is_documented(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    missing = [m for m in MODES if f"`{m}`" not in text]
    assert not missing, f"{readme.name} does not document modes {missing}"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.name)
def test_every_setting_is_documented(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    names = [
        SEED_NAMED.get(field, f"TAGSYS_{field.upper()}")
        for field in Settings.model_fields
        if field not in INTERNAL
    ]
    missing = [n for n in names if n not in text]
    assert not missing, f"{readme.name} does not document settings {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "./scripts/test.sh" in ci and "./scripts/test.sh" in readme
    assert "./scripts/demo.sh" in readme
