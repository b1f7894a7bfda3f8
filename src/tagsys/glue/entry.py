"""`execute_glue_job`: one Glue job run through `TagSystemAPI`.

A Glue job is non-interactive: it runs its request without the CLI's confirmation prompt
(what production confirms is the deploy). Failures are raised as `tagsys.errors` types."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from tagsys.errors import RunError, UsageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tagsys.api import TagSystemAPI
    from tagsys.engine.summary import RunSummary

log = logging.getLogger(__name__)
RUN_MODES = ("task-all", "task-tags", "task-users", "incremental")


@dataclass
class GlueJobResult:
    """What a job run did: `summary` for the run modes, `report` (text) for the others.
    True when it succeeded (a failure is raised, so a returned result is a success)."""

    mode: str
    environment: str
    report: str
    summary: RunSummary | None = None
    succeeded: bool = True

    def __bool__(self) -> bool:
        return self.succeeded

    def to_dict(self) -> dict[str, Any]:
        if self.summary is not None:
            return self.summary.to_dict()
        return {"mode": self.mode, "environment": self.environment, "report": self.report}


def execute_glue_job(
    mode: str,
    environment: str,
    tag_ids: Sequence[int] | None = None,
    user_ids: Sequence[str] | None = None,
    days: int | None = None,
    as_of: date | None = None,
    dry_run: bool = False,
    *,
    log_level: str | None = None,
    spark: SparkSession | None = None,
    **settings: Any,
) -> GlueJobResult:
    """Run `mode` in `environment` (glue-dev, glue-prod; local works too) and return what it
    did. `settings` override the environment's settings (e.g. `lake_uri=`); `spark` is the
    session to use (Glue's), else the active one, else a new one."""
    from tagsys.api import TagSystemAPI
    from tagsys.glue.args import GLUE_MODES

    if mode not in GLUE_MODES:
        raise UsageError(
            f"mode '{mode}' is not a Glue job mode; use one of {', '.join(GLUE_MODES)}"
        )
    if mode == "task-tags" and not tag_ids:
        raise UsageError("task-tags needs tag ids (tag_ids=[1, 3, 5], or --tag_ids 1,3,5)")
    if mode == "task-users" and not user_ids:
        raise UsageError("task-users needs user ids (user_ids=[...], or --user_ids a,b)")
    if mode == "incremental" and days is None:
        raise UsageError("incremental needs days (days=7, or --days 7)")
    with TagSystemAPI(environment, log_level, spark=spark, **settings) as api:
        log.info(
            "glue job: mode %s, environment %s, store %s, lake %s",
            mode,
            api.settings.env,
            api.settings.safe_database_url,
            api.settings.lake_root,
        )
        if mode in RUN_MODES:
            return _run(api, mode, tag_ids, user_ids, days, as_of, dry_run)
        return _other(api, mode)


def _run(
    api: TagSystemAPI,
    mode: str,
    tag_ids: Sequence[int] | None,
    user_ids: Sequence[str] | None,
    days: int | None,
    as_of: date | None,
    dry_run: bool,
) -> GlueJobResult:
    request = api.request(
        mode, tag_ids=tag_ids, user_ids=user_ids, days=days, as_of=as_of, dry_run=dry_run
    )
    summary = api.run(request)
    result = GlueJobResult(mode, api.settings.env, summary.render(), summary, summary.succeeded)
    if not summary.succeeded:
        failed = ", ".join(str(t.tag_id) for t in summary.failed_tags) or "none"
        error = RunError(
            f"run {summary.run_id} ({mode}) did not succeed: failed tags {failed}; "
            f"{summary.final_status or 'see the summary'}. `--mode list-runs` shows it"
        )
        error.result = result  # type: ignore[attr-defined]
        raise error
    return result


def _other(api: TagSystemAPI, mode: str) -> GlueJobResult:
    env = api.settings.env
    if mode == "health":
        report = api.health()
        if not report.ok:
            raise RunError(f"health check failed in '{env}':\n{report.render()}")
        return GlueJobResult(mode, env, report.render())
    if mode == "list-tasks":
        from tagsys.introspect import render_tasks

        return GlueJobResult(mode, env, render_tasks(api.list_tasks()))
    if mode == "validate":
        from tagsys.introspect import render_problems

        problems = api.validate_rules()
        if problems:
            raise RunError(
                f"{len(problems)} rule problem(s) in '{env}':\n{render_problems(problems)}"
            )
        return GlueJobResult(mode, env, render_problems(problems))
    if mode == "migrate":
        from tagsys.store.migrate import upgrade

        revision = upgrade(api.db_url)
        return GlueJobResult(
            mode, env, f"store {api.settings.safe_database_url} at revision {revision}"
        )
    from tagsys.introspect import render_runs

    return GlueJobResult(mode, env, render_runs(api.list_runs()))


def result_json(result: GlueJobResult) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False, default=str)
