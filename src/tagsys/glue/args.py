"""Glue-style job arguments: `--mode task-tags --tag_ids 1,3,5` as Glue passes them to the
script (`--key value`), also `--key=value`, read with `awsglue.utils.getResolvedOptions` when
the script runs on Glue and with the same rules without it.

AWS documents `--mode` as internal to Glue ("do not set"): the seed's `--mode` is read, and
`--tag_mode` is the recommended name (it wins when both are given)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tagsys.errors import ConfigError, UsageError

GLUE_MODES = (
    "health",
    "list-tasks",
    "migrate",
    "validate",
    "task-all",
    "task-tags",
    "task-users",
    "incremental",
    "list-runs",
)
RUN_ARGUMENTS = (
    "tag_mode",
    "mode",
    "env",
    "tag_ids",
    "user_ids",
    "days",
    "as_of",
    "dry_run",
    "log_level",
)
SETTING_ARGUMENTS = (
    "lake_uri",
    "mysql_host",
    "mysql_port",
    "mysql_database",
    "mysql_user",
    "db_secret_id",
    "aws_region",
    "timezone",
    "user_id_column",
    "write_batch_size",
)
"""Settings a job argument may set (the deploy writes them as default arguments)."""
SECRET_ARGUMENTS = ("mysql_password", "db_url", "s3_secret_key", "s3_access_key", "api_key")
"""Never accepted as job arguments: Glue shows them in its console and its API."""


@dataclass(frozen=True)
class JobArgs:
    """One Glue job run's request."""

    mode: str
    env: str | None = None
    tag_ids: tuple[int, ...] | None = None
    user_ids: tuple[str, ...] | None = None
    days: int | None = None
    as_of: date | None = None
    dry_run: bool = False
    log_level: str | None = None
    settings: dict[str, str] = field(default_factory=dict)


def parse_job_args(argv: Sequence[str]) -> JobArgs:
    """The job's arguments from `sys.argv`, with Glue's own reader when it is installed."""
    return job_args_from(resolve_options(argv))


def resolve_options(argv: Sequence[str]) -> dict[str, str]:
    """Every argument the job knows that appears in `argv` (Glue's extra ones are ignored)."""
    names = [n for n in (*RUN_ARGUMENTS, *SETTING_ARGUMENTS, *SECRET_ARGUMENTS) if _given(argv, n)]
    reader = _glue_reader()
    if reader is not None:
        return dict(reader(list(argv), names))
    return fallback_resolved_options(argv, names)


def _glue_reader() -> Callable[[list[str], list[str]], dict[str, str]] | None:
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        return None
    return getResolvedOptions  # type: ignore[no-any-return]


def _given(argv: Sequence[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in argv)


def fallback_resolved_options(argv: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """`getResolvedOptions` without awsglue: `--name value` or `--name=value`; the last one
    wins (Glue puts run arguments after the job's default arguments); a flag with no value
    (`--dry_run` at the end or before another `--option`) reads as `true`."""
    wanted = set(names)
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        item = argv[i]
        i += 1
        if not item.startswith("--"):
            continue
        key, sep, value = item[2:].partition("=")
        if not sep:
            if i < len(argv) and not argv[i].startswith("--"):
                value = argv[i]
                i += 1
            else:
                value = "true"
        if key in wanted:
            found[key] = value
    return found


def job_args_from(options: Mapping[str, str]) -> JobArgs:
    """Check and convert resolved options; errors say which argument and what to pass."""
    secrets = [f"--{n}" for n in SECRET_ARGUMENTS if n in options]
    if secrets:
        raise ConfigError(
            f"{', '.join(secrets)} must not be a job argument (Glue shows arguments in its console "
            "and API): put the store credentials in AWS Secrets Manager and pass --db_secret_id"
        )
    mode = options.get("tag_mode") or options.get("mode")
    if not mode:
        raise UsageError(
            f"the job needs --tag_mode (or the seed's --mode): one of {', '.join(GLUE_MODES)}"
        )
    if mode not in GLUE_MODES:
        raise UsageError(
            f"--tag_mode '{mode}' is not a job mode; use one of {', '.join(GLUE_MODES)}"
        )
    return JobArgs(
        mode=mode,
        env=options.get("env") or None,
        tag_ids=_ints(options.get("tag_ids"), "--tag_ids"),
        user_ids=_strings(options.get("user_ids"), "--user_ids"),
        days=_int(options.get("days"), "--days"),
        as_of=_date(options.get("as_of")),
        dry_run=_bool(options.get("dry_run", "false"), "--dry_run"),
        log_level=options.get("log_level") or None,
        settings={k: options[k] for k in SETTING_ARGUMENTS if options.get(k)},
    )


def _ints(text: str | None, name: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"{name} '{text}' is not a list of integers like 1,3,5") from None
    if not values:
        raise UsageError(f"{name} is empty; give ids like 1,3,5 or leave it out")
    return values


def _strings(text: str | None, name: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise UsageError(f"{name} is empty; give ids like user_000001,user_000002 or leave it out")
    return values


def _int(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name} '{text}' is not a whole number") from None


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as_of '{text}' is not a date like 2024-01-31") from None


def _bool(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "y"):
        return True
    if value in ("false", "0", "no", "n", ""):
        return False
    raise UsageError(f"{name} '{text}' is not true or false")


def start_arguments(text: str) -> dict[str, str]:
    """The `--arguments` of `aws glue start-job-run` as the job receives them: the JSON form
    (`'{"--tag_mode":"task-tags","--tag_ids":"1,3,5"}'`) or the seed's shorthand
    (`'--mode=task-tags,--tag_ids=1,3,5'`, where a comma not followed by `--` is part of the value)."""
    text = text.strip()
    if text.startswith("{"):
        value: Any = json.loads(text)
        return {str(k): str(v) for k, v in value.items()}
    arguments: dict[str, str] = {}
    for part in ("," + text).split(",--")[1:]:
        key, _, value = part.partition("=")
        arguments[f"--{key}"] = value
    return arguments


def argv_from(arguments: Mapping[str, str], script: str = "glue_job.py") -> list[str]:
    """The `sys.argv` Glue gives the script for a job's arguments (`--key value` pairs)."""
    argv = [script]
    for key, value in arguments.items():
        argv += [key, value]
    return argv
