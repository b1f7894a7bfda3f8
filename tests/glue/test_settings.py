"""The seed's Glue variables (`DEV_*`, `PROD_*`, `.env.dev`, `.env.prod`) and store
credentials from AWS Secrets Manager (moto), which appear in no log and no repr."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tagsys.errors import ConfigError
from tagsys.settings import load_settings

SEED_ENV_DEV = """\
# AWS Glue开发环境配置
TAG_SYSTEM_ENV=glue-dev
AWS_REGION=us-east-1
DEV_S3_BUCKET=tag-system-dev-scripts
DEV_DATA_S3_BUCKET=tag-system-dev-data-lake
DEV_GLUE_ROLE_ARN=arn:aws:iam::123456789012:role/GlueServiceRole-dev
DEV_MYSQL_HOST=tag-system-dev.xxxxxxxxx.us-east-1.rds.amazonaws.com
DEV_MYSQL_PORT=3306
DEV_MYSQL_DATABASE=tag_system_dev
DEV_MYSQL_USERNAME=admin
DEV_MYSQL_PASSWORD=YourDevPassword123!
"""


def test_seed_env_file_is_read_from_a_parent_folder(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".env.dev").write_text(SEED_ENV_DEV)
    sub = tmp_path / "environments" / "glue-dev"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)  # the seed runs `python deploy.py` from here
    s = load_settings("glue-dev")
    assert s.scripts_bucket == "tag-system-dev-scripts"
    assert s.lake_uri == "s3://tag-system-dev-data-lake/hive"
    assert s.glue_role_arn == "arn:aws:iam::123456789012:role/GlueServiceRole-dev"
    assert s.database_url.startswith("mysql+pymysql://admin:YourDevPassword123%21@tag-system-dev.")
    assert s.database_url.endswith(":3306/tag_system_dev?charset=utf8mb4")
    assert "YourDevPassword" not in repr(s) and "YourDevPassword" not in s.safe_database_url


def test_prod_variables_from_the_environment_beat_the_file(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".env.prod").write_text(SEED_ENV_DEV.replace("DEV_", "PROD_"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROD_S3_BUCKET", "from-env")
    s = load_settings("glue-prod")
    assert s.scripts_bucket == "from-env" and s.mysql_user == "admin"
    monkeypatch.setenv("TAGSYS_SCRIPTS_BUCKET", "tagsys-wins")
    assert load_settings("glue-prod").scripts_bucket == "tagsys-wins"
    # dev variables never configure prod
    monkeypatch.setenv("DEV_GLUE_ROLE_ARN", "arn:dev")
    assert load_settings("glue-prod").glue_role_arn != "arn:dev"


def test_glue_env_without_a_store_names_every_way_to_set_one() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings("glue-dev")
    for name in ("TAGSYS_DB_URL", "MYSQL_HOST", "DEV_MYSQL_", "TAGSYS_DB_SECRET_ID"):
        assert name in str(caught.value)


def test_bad_env_file_line_is_named(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".env.dev").write_text("DEV_S3_BUCKET=x\nthis is not a setting\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"\.env\.dev:2"):
        load_settings("glue-dev")


def _put_secret(name: str, value: dict) -> None:
    import boto3

    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=name, SecretString=json.dumps(value)
    )


def test_secrets_manager_credentials_reach_the_store_url(aws, monkeypatch, caplog) -> None:
    _put_secret(
        "tagsys/glue-dev/mysql",
        {"engine": "mysql", "host": "db.internal", "port": 3307, "dbname": "tags",
         "username": "glue", "password": "s3cr3t-Pw!"},
    )  # fmt: skip
    monkeypatch.setenv("DEV_DB_SECRET_ID", "tagsys/glue-dev/mysql")
    caplog.set_level(logging.DEBUG)
    s = load_settings("glue-dev")
    assert (
        s.database_url == "mysql+pymysql://glue:s3cr3t-Pw%21@db.internal:3307/tags?charset=utf8mb4"
    )
    assert "s3cr3t" not in s.safe_database_url and "s3cr3t" not in repr(s)
    assert "s3cr3t" not in caplog.text


def test_rds_managed_secret_takes_host_from_settings(aws, monkeypatch) -> None:
    _put_secret("rds!db-1234", {"username": "admin", "password": "pw"})
    monkeypatch.setenv("DEV_DB_SECRET_ID", "rds!db-1234")
    monkeypatch.setenv("DEV_MYSQL_HOST", "rds.example")
    monkeypatch.setenv("DEV_MYSQL_DATABASE", "tag_system_dev")
    url = load_settings("glue-dev").database_url
    assert url == "mysql+pymysql://admin:pw@rds.example:3306/tag_system_dev?charset=utf8mb4"


def test_missing_or_malformed_secret_is_a_clear_error(aws, monkeypatch) -> None:
    monkeypatch.setenv("TAGSYS_DB_SECRET_ID", "nope")
    s = load_settings("glue-dev")  # the secret is read on first use, not at load
    with pytest.raises(
        ConfigError, match=r"secret 'nope'.*ResourceNotFoundException.*GetSecretValue"
    ):
        _ = s.database_url
    _put_secret("half", {"username": "u", "password": "hidden-pw"})
    monkeypatch.setenv("TAGSYS_DB_SECRET_ID", "half")
    with pytest.raises(ConfigError, match="lacks host") as caught:
        _ = load_settings("glue-dev").database_url
    assert "hidden-pw" not in str(caught.value)
