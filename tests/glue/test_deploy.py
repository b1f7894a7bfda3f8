"""`tagsys deploy` against moto: what lands in S3, Glue and Secrets Manager, that a second deploy
updates, that prod needs confirmation, that missing settings are refused before any upload,
and that the store's password reaches neither the job definition nor the output."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from tagsys.cli import main
from tagsys.errors import ConfigError
from tagsys.glue.deploy import build_wheel

ROLE = "arn:aws:iam::123456789012:role/GlueServiceRole-dev"
PASSWORD = "YourDevPassword123!"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product's wheel, built once (as the deploy builds it)."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture
def update_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2 has no glue UpdateJob: this adds it with the real API's semantics (the job's
    definition is replaced by JobUpdate; the job, its name and its ARN stay)."""
    from moto.core.responses import ActionResult
    from moto.glue.responses import GlueResponse

    fields = {
        "Description": "description", "Role": "role", "Command": "command",
        "DefaultArguments": "default_arguments", "Connections": "connections",
        "MaxRetries": "max_retries", "Timeout": "timeout", "GlueVersion": "glue_version",
        "NumberOfWorkers": "number_of_workers", "WorkerType": "worker_type",
        "ExecutionProperty": "execution_property",
    }  # fmt: skip

    def update(self: Any) -> Any:
        name = self._get_param("JobName")
        job = self.glue_backend.get_job(name)
        for key, attr in fields.items():
            setattr(job, attr, self._get_param("JobUpdate").get(key))
        return ActionResult({"JobName": name})

    monkeypatch.setattr(GlueResponse, "update_job", update, raising=False)


@pytest.fixture
def dev_env(monkeypatch: pytest.MonkeyPatch, aws: None, update_job: None) -> None:
    for name, value in {
        "DEV_S3_BUCKET": "tag-system-dev-scripts",
        "DEV_DATA_S3_BUCKET": "tag-system-dev-data-lake",
        "DEV_GLUE_ROLE_ARN": ROLE,
        "DEV_MYSQL_HOST": "tag-system-dev.xxxxxxxxx.us-east-1.rds.amazonaws.com",
        "DEV_MYSQL_PORT": "3306",
        "DEV_MYSQL_DATABASE": "tag_system_dev",
        "DEV_MYSQL_USERNAME": "admin",
        "DEV_MYSQL_PASSWORD": PASSWORD,
    }.items():
        monkeypatch.setenv(name, value)
        monkeypatch.setenv(name.replace("DEV_", "PROD_", 1), value.replace("dev", "prod"))
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="tag-system-dev-scripts")
    s3.create_bucket(Bucket="tag-system-prod-scripts")


def _keys(bucket: str) -> list[str]:
    s3 = boto3.client("s3", region_name="us-east-1")
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _jobs() -> list[str]:
    return boto3.client("glue", region_name="us-east-1").list_jobs()["JobNames"]


def test_deploy_uploads_creates_then_updates(dev_env, wheel, capsys, caplog, monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)
    assert main(["deploy", "--env", "glue-dev", "--wheel", str(wheel)]) == 0
    out = capsys.readouterr().out
    logged = caplog.text  # before this test reads the secret itself
    assert "Response body" in logged  # botocore's wire log is on: the check below can fail
    prefix = "glue-jobs/tag-compute-dev"
    assert _keys("tag-system-dev-scripts") == [f"{prefix}/glue_job.py", f"{prefix}/{wheel.name}"]
    s3 = boto3.client("s3", region_name="us-east-1")
    script = s3.get_object(Bucket="tag-system-dev-scripts", Key=f"{prefix}/glue_job.py")[
        "Body"
    ].read()
    assert b"from tagsys.glue.job import main" in script
    uploaded = s3.get_object(Bucket="tag-system-dev-scripts", Key=f"{prefix}/{wheel.name}")[
        "Body"
    ].read()
    assert uploaded == wheel.read_bytes()

    job = boto3.client("glue", region_name="us-east-1").get_job(JobName="tag-compute-dev")["Job"]
    assert job["Role"] == ROLE and job["GlueVersion"] == "6.0"
    assert job["WorkerType"] == "G.1X" and job["NumberOfWorkers"] == 2
    assert job["Timeout"] == 120 and job["MaxRetries"] == 0
    assert job["Command"]["ScriptLocation"] == f"s3://tag-system-dev-scripts/{prefix}/glue_job.py"
    args = job["DefaultArguments"]
    modules = args["--additional-python-modules"].split(",")
    assert modules[-1] == f"s3://tag-system-dev-scripts/{prefix}/{wheel.name}"
    assert all("==" in m for m in modules[:-1]) and any(m.startswith("pydantic==") for m in modules)
    assert not any(m.startswith(("pyspark", "py4j")) for m in modules)
    assert args["--python-modules-installer-option"] == "--no-deps"
    assert (
        args["--enable-continuous-cloudwatch-log"] == "true" and args["--enable-metrics"] == "true"
    )
    assert (
        args["--env"] == "glue-dev" and args["--lake_uri"] == "s3://tag-system-dev-data-lake/hive"
    )
    assert args["--db_secret_id"] == "tagsys/glue-dev/mysql"
    assert "aws glue start-job-run" in out and '"--tag_mode":"task-tags","--tag_ids":"1,3,5"' in out

    # the credentials are in Secrets Manager, in RDS form, and nowhere else
    secret = boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(
        SecretId="tagsys/glue-dev/mysql"
    )
    assert json.loads(secret["SecretString"])["password"] == PASSWORD
    assert PASSWORD not in json.dumps(job, default=str)
    assert PASSWORD not in out and PASSWORD not in logged

    # a second deploy updates the same job
    monkeypatch.setenv("TAGSYS_GLUE_WORKERS", "5")
    assert (
        main(["deploy", "--env", "glue-dev", "--wheel", str(wheel), "--glue-version", "5.1"]) == 0
    )
    assert "job tag-compute-dev updated" in capsys.readouterr().out
    assert _jobs() == ["tag-compute-dev"]
    job = boto3.client("glue", region_name="us-east-1").get_job(JobName="tag-compute-dev")["Job"]
    assert job["NumberOfWorkers"] == 5 and job["GlueVersion"] == "5.1"


def test_dry_run_prints_the_definition_and_changes_nothing(dev_env, capsys) -> None:
    assert main(["deploy", "--env", "glue-dev", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"Name": "tag-compute-dev"' in out and '"GlueVersion": "6.0"' in out
    assert "nothing was built, uploaded or changed" in out and PASSWORD not in out
    assert _keys("tag-system-dev-scripts") == [] and _jobs() == []


def test_prod_without_confirmation_changes_nothing(dev_env, wheel, capsys) -> None:
    assert main(["deploy", "--env", "glue-prod", "--wheel", str(wheel)]) == 1
    err = capsys.readouterr().err
    assert "glue-prod" in err and "--yes" in err and "nothing was changed" in err
    assert _keys("tag-system-prod-scripts") == [] and _jobs() == []
    assert main(["deploy", "--env", "glue-prod", "--wheel", str(wheel), "--yes"]) == 0
    assert _jobs() == ["tag-compute-prod"]


def test_missing_role_and_bucket_are_named_before_any_upload(dev_env, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DEV_GLUE_ROLE_ARN")
    monkeypatch.delenv("DEV_S3_BUCKET")
    assert main(["deploy", "--env", "glue-dev"]) == 1
    err = capsys.readouterr().err
    assert "DEV_S3_BUCKET" in err and "DEV_GLUE_ROLE_ARN" in err and "nothing was built" in err
    assert "Traceback" not in err and _jobs() == []


def test_a_bucket_that_does_not_exist_is_a_clear_error(dev_env, wheel, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DEV_S3_BUCKET", "no-such-bucket")
    assert main(["deploy", "--env", "glue-dev", "--wheel", str(wheel)]) == 1
    err = capsys.readouterr().err
    assert "no-such-bucket does not exist" in err and _jobs() == []


def test_existing_secret_is_used_not_written(dev_env, wheel, monkeypatch) -> None:
    for name in ("DEV_MYSQL_PASSWORD", "DEV_MYSQL_USERNAME"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("DEV_DB_SECRET_ID", "rds!db-abc")
    assert main(["deploy", "--env", "glue-dev", "--wheel", str(wheel)]) == 0
    job = boto3.client("glue", region_name="us-east-1").get_job(JobName="tag-compute-dev")["Job"]
    assert job["DefaultArguments"]["--db_secret_id"] == "rds!db-abc"
    listed = boto3.client("secretsmanager", region_name="us-east-1").list_secrets()["SecretList"]
    assert listed == []


def test_print_iam_policy(dev_env, capsys) -> None:
    assert main(["deploy", "--env", "glue-dev", "--print-iam-policy"]) == 0
    policy = json.loads(capsys.readouterr().out)
    resources = json.dumps(policy)
    assert "arn:aws:s3:::tag-system-dev-data-lake/hive/*" in resources
    assert (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:tagsys/glue-dev/mysql*" in resources
    )
    assert '"Resource": "*"' not in resources.replace(
        '"cloudwatch:PutMetricData"], "Resource": "*"', ""
    )
    # the policy is valid IAM (moto's IAM parses it)
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_policy(PolicyName="TagSystemGluePolicy", PolicyDocument=json.dumps(policy))


def test_the_wheel_holds_the_package_and_the_seed_modules(wheel) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "tagsys/glue/job_script.py" in names and "glue_entry.py" in names
    assert "tagsys/config/glue-prod.toml" in names


def test_unknown_glue_version_is_refused(dev_env) -> None:
    from tagsys.glue.deploy import plan_deploy
    from tagsys.settings import load_settings

    with pytest.raises(ConfigError, match=r"Glue version '4\.0' is not supported"):
        plan_deploy(load_settings("glue-dev"), "w.whl", "4.0")


def test_nothing_configured_names_store_bucket_and_role(capsys) -> None:
    """The seed's `python environments/glue-dev/deploy.py` on a machine with no settings."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "environments" / "glue-dev" / "deploy.py"), "--dry-run"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, cwd="/", timeout=120,
        check=False,
    )  # fmt: skip
    assert out.returncode == 1 and out.stderr.startswith("Error: deploy to glue-dev refused")
    for name in ("DEV_MYSQL_", "TAGSYS_DB_SECRET_ID", "DEV_S3_BUCKET", "DEV_GLUE_ROLE_ARN"):
        assert name in out.stderr
    assert "Traceback" not in out.stderr
