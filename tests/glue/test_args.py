"""Glue-style job arguments: every example of the seed's Glue section, both Glue spellings
(`--key value`, `--key=value`), Glue's own extra arguments ignored, bad values refused."""

from __future__ import annotations

from datetime import date

import pytest

from tagsys.errors import ConfigError, UsageError
from tagsys.glue.args import (
    JobArgs,
    argv_from,
    fallback_resolved_options,
    job_args_from,
    parse_job_args,
    start_arguments,
)

GLUE_EXTRAS = [
    "--JOB_ID", "j_0123", "--JOB_RUN_ID", "jr_0456", "--job-bookmark-option",
    "job-bookmark-disable", "--TempDir", "s3://tmp/", "--enable-metrics", "true",
    "--JOB_NAME", "tag-compute-dev",
]  # fmt: skip

# (the `--arguments` text of the seed's README, the request it must give)
SEED_EXAMPLES = [
    ("--mode=health,--log_level=INFO", JobArgs("health", log_level="INFO")),
    ("--mode=health,--log_level=WARN", JobArgs("health", log_level="WARN")),
    ("--mode=health", JobArgs("health")),
    ("--mode=list-tasks", JobArgs("list-tasks")),
    ("--mode=task-all", JobArgs("task-all")),
    ("--mode=task-tags,--tag_ids=1,3,5", JobArgs("task-tags", tag_ids=(1, 3, 5))),
    (
        "--mode=task-users,--user_ids=user_000001,user_000002,--tag_ids=1,3,5",
        JobArgs("task-users", tag_ids=(1, 3, 5), user_ids=("user_000001", "user_000002")),
    ),
    ("--mode=incremental,--days=7", JobArgs("incremental", days=7)),
    ('{"--mode":"task-tags", "--tag_ids":"1,3,5"}', JobArgs("task-tags", tag_ids=(1, 3, 5))),
]


@pytest.mark.parametrize(("text", "expected"), SEED_EXAMPLES, ids=[t for t, _ in SEED_EXAMPLES])
def test_every_seed_example(text: str, expected: JobArgs) -> None:
    arguments = start_arguments(text)
    # Glue passes default arguments first, then the run's, each as `--key value`
    argv = [*argv_from({"--env": "glue-dev"}), *GLUE_EXTRAS, *argv_from(arguments)[1:]]
    got = parse_job_args(argv)
    assert got == JobArgs(**{**expected.__dict__, "env": "glue-dev"})


def test_equals_form_and_flags_and_optional_ones() -> None:
    argv = [
        "s.py",
        "--tag_mode=task-users",
        "--user_ids",
        "a, b",
        "--as_of=2024-06-30",
        "--dry_run",
    ]
    got = parse_job_args(argv)
    assert got.mode == "task-users" and got.user_ids == ("a", "b")
    assert got.as_of == date(2024, 6, 30) and got.dry_run is True
    assert got.tag_ids is None and got.days is None and got.env is None
    assert parse_job_args(["s.py", "--mode", "task-all", "--dry_run", "false"]).dry_run is False


def test_tag_mode_wins_over_glue_internal_mode() -> None:
    assert parse_job_args(["s.py", "--mode", "x", "--tag_mode", "health"]).mode == "health"


def test_run_arguments_override_defaults_last_wins() -> None:
    options = fallback_resolved_options(["s", "--days", "1", "--days", "7"], ["days"])
    assert options == {"days": "7"}


def test_settings_arguments_pass_through() -> None:
    got = parse_job_args(
        ["s", "--mode", "health", "--lake_uri", "s3://b/hive", "--db_secret_id", "x"]
    )
    assert got.settings == {"lake_uri": "s3://b/hive", "db_secret_id": "x"}


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({}, UsageError, "--tag_mode"),
        ({"mode": "drop-all"}, UsageError, "not a job mode"),
        ({"mode": "task-tags", "tag_ids": "1,x"}, UsageError, "--tag_ids '1,x'"),
        ({"mode": "task-tags", "tag_ids": ","}, UsageError, "--tag_ids is empty"),
        ({"mode": "incremental", "days": "seven"}, UsageError, "--days"),
        ({"mode": "task-all", "as_of": "30/06/2024"}, UsageError, "--as_of"),
        ({"mode": "task-all", "dry_run": "maybe"}, UsageError, "--dry_run"),
        ({"mode": "health", "mysql_password": "pw"}, ConfigError, "--db_secret_id"),
        ({"mode": "health", "db_url": "mysql://u:pw@h/d"}, ConfigError, "Secrets Manager"),
    ],
)
def test_bad_arguments_are_named(options: dict[str, str], error: type, says: str) -> None:
    with pytest.raises(error) as caught:
        job_args_from(options)
    assert says in str(caught.value)
    assert "pw" not in str(caught.value).replace("password", "")
