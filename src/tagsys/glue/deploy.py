"""`tagsys deploy --env glue-dev|glue-prod`: build the wheel and the job script, upload them to
the environment's scripts bucket, create or update the Glue job, print how to start it.

Every required setting is checked before anything is built or uploaded. The store's
password never goes into the job definition: it is kept in AWS Secrets Manager (the
configured `db_secret_id`, or a secret `tagsys/<env>/mysql` this deploy writes) and the job
receives only the secret's name."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsys.errors import ConfigError, TagSysError
from tagsys.glue.modules import GLUE_SPARK, pinned_dependencies, python_of
from tagsys.settings import SEED_PREFIXES

if TYPE_CHECKING:
    from tagsys.settings import Settings

PREFIX = "glue-jobs"
EXAMPLE_RUNS: tuple[tuple[str, dict[str, str]], ...] = (
    ("health", {}),
    ("list-tasks", {}),
    ("task-all", {}),
    ("task-tags", {"--tag_ids": "1,3,5"}),
    ("task-users", {"--user_ids": "user_000001,user_000002", "--tag_ids": "1,3,5"}),
    ("incremental", {"--days": "7"}),
    ("task-all", {"--dry_run": "true"}),
)


@dataclass
class DeployPlan:
    """Everything a deploy will do, computed (and checked) before it does any of it."""

    env: str
    region: str
    job_name: str
    bucket: str
    script_key: str
    wheel_key: str
    job: dict[str, Any]
    secret_id: str
    secret_value: str | None = field(default=None, repr=False)
    """The RDS-form credentials to store in `secret_id`; None: the secret exists already."""

    def describe(self) -> str:
        """The job definition it sends and what it writes (no secret value)."""
        lines = [
            f"environment {self.env}, region {self.region}",
            f"upload  s3://{self.bucket}/{self.wheel_key}",
            f"upload  s3://{self.bucket}/{self.script_key}",
        ]
        if self.secret_value is not None:
            lines.append(
                f"secret  {self.secret_id} (store credentials from the settings, value not shown)"
            )
        else:
            lines.append(f"secret  {self.secret_id} (existing; the job reads it at start)")
        lines.append("job definition:")
        lines.append(json.dumps(self.job, indent=2, sort_keys=True))
        return "\n".join(lines)

    def start_commands(self) -> list[str]:
        """`aws glue start-job-run` for each mode (the JSON form of --arguments: the
        shorthand form cannot carry a comma inside a value such as 1,3,5)."""
        commands = []
        for mode, extra in EXAMPLE_RUNS:
            arguments = json.dumps({"--tag_mode": mode, **extra}, separators=(",", ":"))
            commands.append(
                f"aws glue start-job-run --region {self.region} --job-name {self.job_name} "
                f"--arguments {shlex.quote(arguments)}"
            )
        return commands


def check_settings(settings: Settings) -> None:
    """Refuse a deploy whose settings are incomplete, naming every missing one."""
    prefix = SEED_PREFIXES.get(settings.env)
    if prefix is None:
        raise ConfigError(
            f"deploy targets a Glue environment (glue-dev or glue-prod), not '{settings.env}': "
            "use --env glue-dev or --env glue-prod"
        )
    missing = []
    if not settings.scripts_bucket:
        missing.append(f"the scripts bucket ({prefix}S3_BUCKET or TAGSYS_SCRIPTS_BUCKET)")
    if not settings.glue_role_arn:
        missing.append(f"the job's IAM role ({prefix}GLUE_ROLE_ARN or TAGSYS_GLUE_ROLE_ARN)")
    elif not settings.glue_role_arn.startswith("arn:aws") or ":role/" not in settings.glue_role_arn:
        missing.append(
            f"a role ARN like arn:aws:iam::ACCOUNT:role/NAME, not '{settings.glue_role_arn}'"
        )
    if not settings.aws_region:
        missing.append("the AWS region (AWS_REGION)")
    if not settings.lake_uri or not settings.lake_uri.startswith("s3://"):
        missing.append(f"an S3 lake ({prefix}DATA_S3_BUCKET or TAGSYS_LAKE_URI=s3://...)")
    no_secret = not settings.db_secret_id and settings.db_url is None
    if no_secret and (not settings.mysql_host or settings.mysql_password is None):
        missing.append(
            f"the store: {prefix}MYSQL_HOST/_USERNAME/_PASSWORD/_DATABASE, or "
            f"{prefix}DB_SECRET_ID (a Secrets Manager secret with the RDS credentials)"
        )
    if missing:
        raise ConfigError(
            f"deploy to {settings.env} refused, nothing was built or uploaded; missing: "
            + "; ".join(missing)
        )


def refuse_unloadable(env: str | None, problem: str) -> ConfigError:
    """The settings did not load (no store, say): name that and every other missing deploy
    setting at once, from the variables alone."""
    import os

    from tagsys.settings import seed_values

    env = env or os.environ.get("TAGSYS_ENV") or os.environ.get("TAG_SYSTEM_ENV") or "local"
    prefix = SEED_PREFIXES.get(env)
    if prefix is None:
        return ConfigError(problem)
    values = seed_values(env)
    missing = [problem.removeprefix("invalid settings: settings: ")]
    if not (values.get("scripts_bucket") or os.environ.get("TAGSYS_SCRIPTS_BUCKET")):
        missing.append(f"the scripts bucket ({prefix}S3_BUCKET or TAGSYS_SCRIPTS_BUCKET)")
    if not (values.get("glue_role_arn") or os.environ.get("TAGSYS_GLUE_ROLE_ARN")):
        missing.append(f"the job's IAM role ({prefix}GLUE_ROLE_ARN or TAGSYS_GLUE_ROLE_ARN)")
    return ConfigError(
        f"deploy to {env} refused, nothing was built or uploaded; missing: " + "; ".join(missing)
    )


def plan_deploy(settings: Settings, wheel_name: str, glue_version: str | None = None) -> DeployPlan:
    """The deploy's plan: S3 keys, the job definition, the secret to write."""
    check_settings(settings)
    version = glue_version or settings.glue_version
    python_of(version)  # an unknown Glue version is refused here
    assert settings.scripts_bucket and settings.glue_role_arn and settings.aws_region
    job_name = settings.glue_job_name or f"tag-compute-{settings.env.removeprefix('glue-')}"
    base = f"{PREFIX}/{job_name}"
    wheel_key = f"{base}/{wheel_name}"
    secret_id, secret_value = _secret(settings)
    modules = [*pinned_dependencies(version), f"s3://{settings.scripts_bucket}/{wheel_key}"]
    arguments = {
        "--job-language": "python",
        "--additional-python-modules": ",".join(modules),
        "--python-modules-installer-option": "--no-deps",
        "--enable-continuous-cloudwatch-log": "true",
        "--enable-metrics": "true",
        "--enable-observability-metrics": "true",
        "--enable-spark-ui": "false",
        "--TempDir": f"s3://{settings.scripts_bucket}/{base}/tmp/",
        "--env": settings.env,
        "--lake_uri": settings.lake_uri or "",
        "--db_secret_id": secret_id,
        "--aws_region": settings.aws_region,
        "--timezone": settings.timezone,
    }
    if settings.mysql_host and settings.db_url is None:
        arguments["--mysql_host"] = settings.mysql_host
        arguments["--mysql_port"] = str(settings.mysql_port)
        arguments["--mysql_database"] = settings.mysql_database
    job: dict[str, Any] = {
        "Name": job_name,
        "Description": f"tagsys {settings.env}: rule-driven user tags (Spark {GLUE_SPARK[version]})",
        "Role": settings.glue_role_arn,
        "Command": {
            "Name": "glueetl",
            "ScriptLocation": f"s3://{settings.scripts_bucket}/{base}/glue_job.py",
            "PythonVersion": "3",
        },
        "GlueVersion": version,
        "WorkerType": settings.glue_worker_type,
        "NumberOfWorkers": settings.glue_workers,
        "Timeout": settings.glue_timeout_minutes,
        "MaxRetries": settings.glue_max_retries,
        "ExecutionProperty": {"MaxConcurrentRuns": 1},
        "DefaultArguments": arguments,
    }
    if settings.glue_connection:
        job["Connections"] = {"Connections": [settings.glue_connection]}
    return DeployPlan(
        env=settings.env,
        region=settings.aws_region,
        job_name=job_name,
        bucket=settings.scripts_bucket,
        script_key=f"{base}/glue_job.py",
        wheel_key=wheel_key,
        job=job,
        secret_id=secret_id,
        secret_value=secret_value,
    )


def _secret(settings: Settings) -> tuple[str, str | None]:
    """The secret the job reads, and the value to store in it (None: use it as it is)."""
    from sqlalchemy.engine import make_url

    from tagsys.glue.aws_secrets import rds_secret_value

    if settings.db_secret_id:
        return settings.db_secret_id, None
    name = f"tagsys/{settings.env}/mysql"
    if settings.db_url is not None:
        url = make_url(settings.db_url.get_secret_value())
        if url.get_backend_name() != "mysql":
            raise ConfigError(
                f"a Glue job needs a MySQL store, not {url.get_backend_name()}: fix TAGSYS_DB_URL"
            )
        values = {
            "mysql_host": url.host,
            "mysql_port": url.port or 3306,
            "mysql_database": url.database,
            "mysql_user": url.username,
            "mysql_password": url.password,
        }
        settings = settings.model_copy(update={k: v for k, v in values.items() if v is not None})
    return name, rds_secret_value(settings)


def job_script_source() -> str:
    """The script Glue runs: `tagsys/glue/job_script.py`."""
    return resources.files("tagsys.glue").joinpath("job_script.py").read_text(encoding="utf-8")


def project_root() -> Path:
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file():
        raise ConfigError(
            "deploy builds the wheel from the source checkout, which was not found next to the "
            "installed package: run it from a clone (pip install -e .) or pass --wheel PATH"
        )
    return root


def build_wheel(out_dir: Path) -> Path:
    """`pip wheel` of the checkout, without dependencies (Glue installs them pinned)."""
    root = project_root()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(out_dir),
            str(root),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wheels = sorted(out_dir.glob("tagsys-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"building the tagsys wheel failed: {last}")
    return wheels[-1]


def apply(plan: DeployPlan, wheel: Path, clients: Any = None, echo: Any = print) -> str:
    """Upload, write the secret, create or update the job. Returns 'created' or 'updated'."""
    from botocore.exceptions import BotoCoreError, ClientError

    from tagsys.glue.aws_secrets import boto3_client, quiet_aws_logs

    get = clients or (lambda service: boto3_client(service, plan.region))
    s3, glue, secrets = get("s3"), get("glue"), get("secretsmanager")
    step = "checking the scripts bucket"
    try:
        s3.head_bucket(Bucket=plan.bucket)
        step = "uploading the wheel"
        echo(f"uploading s3://{plan.bucket}/{plan.wheel_key}")
        s3.upload_file(str(wheel), plan.bucket, plan.wheel_key)
        step = "uploading the job script"
        echo(f"uploading s3://{plan.bucket}/{plan.script_key}")
        s3.put_object(Bucket=plan.bucket, Key=plan.script_key, Body=job_script_source().encode())
        if plan.secret_value is not None:
            step = f"writing the store credentials to secret {plan.secret_id}"
            echo(f"storing the store credentials in Secrets Manager secret {plan.secret_id}")
            with quiet_aws_logs():
                _put_secret(secrets, plan.secret_id, plan.secret_value)
        step = f"creating or updating Glue job {plan.job_name}"
        if _job_exists(glue, plan.job_name):
            update = {k: v for k, v in plan.job.items() if k != "Name"}
            glue.update_job(JobName=plan.job_name, JobUpdate=update)
            outcome = "updated"
        else:
            glue.create_job(**plan.job)
            outcome = "created"
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise TagSysError(
            f"deploy to {plan.env} failed while {step}: {code}: {_hint(code, plan)}"
        ) from None
    except BotoCoreError as exc:
        raise TagSysError(
            f"deploy to {plan.env} failed while {step}: {type(exc).__name__}. Check the AWS "
            "credentials (aws configure) and AWS_REGION"
        ) from None
    echo(f"job {plan.job_name} {outcome}")
    return outcome


def _hint(code: str, plan: DeployPlan) -> str:
    if code in ("404", "NoSuchBucket"):
        return f"bucket {plan.bucket} does not exist; create it (aws s3 mb s3://{plan.bucket}) or fix the scripts bucket setting"
    if code in ("403", "AccessDenied", "AccessDeniedException"):
        return "the deploying identity lacks permission; see `tagsys deploy --print-iam-policy` and the README"
    if code in ("InvalidInputException", "EntityNotFoundException"):
        return (
            "Glue refused the job definition; check the role ARN, Glue version and connection name"
        )
    return "see the AWS error code"


def _job_exists(glue: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        glue.get_job(JobName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
            return False
        raise
    return True


def _put_secret(secrets: Any, name: str, value: str) -> None:
    from botocore.exceptions import ClientError

    try:
        secrets.put_secret_value(SecretId=name, SecretString=value)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        secrets.create_secret(Name=name, SecretString=value, Description="tagsys store credentials")


def deploy(
    settings: Settings,
    *,
    dry_run: bool = False,
    glue_version: str | None = None,
    wheel: Path | None = None,
    clients: Any = None,
    echo: Any = print,
) -> DeployPlan:
    """The whole deploy; `dry_run` prints the plan and changes nothing."""
    check_settings(settings)
    if wheel is not None and not wheel.is_file():
        raise ConfigError(f"--wheel {wheel} is not a file")
    name = wheel.name if wheel is not None else f"tagsys-{_version()}-py3-none-any.whl"
    plan = plan_deploy(settings, name, glue_version)
    if dry_run:
        echo(plan.describe())
        echo("dry run: nothing was built, uploaded or changed")
    else:
        with tempfile.TemporaryDirectory(prefix="tagsys-wheel-") as tmp:
            if wheel is None:
                echo("building the tagsys wheel")
                wheel = build_wheel(Path(tmp))
                plan = plan_deploy(settings, wheel.name, glue_version)
            apply(plan, wheel, clients, echo)
    echo("start the job with:")
    for command in plan.start_commands():
        echo(f"  {command}")
    return plan


def _version() -> str:
    from importlib.metadata import version

    return version("tagsys")
