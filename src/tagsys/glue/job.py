"""The Glue job: read Glue-style arguments, take Glue's SparkSession (or, without awsglue,
the one `spark-submit` gives), run `execute_glue_job`, exit non-zero on any failure.

The script Glue runs (`job_script.py`, uploaded by the deploy as `glue_job.py`) only calls
`main`. Locally: `spark-submit src/tagsys/glue/job_script.py --env local --tag_mode task-all`."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tagsys.errors import RunCancelled, TagSysError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("tagsys.glue")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one job from `argv` (default `sys.argv`); 0 on success, 1 on any failure, with
    `Error: <what and what to do>` on stderr and no traceback (unless --log_level DEBUG)."""
    from tagsys.glue.args import parse_job_args
    from tagsys.glue.entry import execute_glue_job, result_json
    from tagsys.settings import load_settings

    argv = list(sys.argv if argv is None else argv)
    debug = "DEBUG" in (a.upper() for a in argv)
    _configure_logging("DEBUG" if debug else "INFO")
    glue_job: Any = None
    try:
        args = parse_job_args(argv)
        env = (
            args.env or os.environ.get("TAGSYS_ENV") or os.environ.get("TAG_SYSTEM_ENV") or "local"
        )
        overrides: dict[str, Any] = dict(args.settings)
        load_settings(env, **overrides)  # settings are refused before Spark starts
        spark, glue_job = glue_session(argv)
        result = execute_glue_job(
            args.mode,
            env,
            tag_ids=args.tag_ids,
            user_ids=args.user_ids,
            days=args.days,
            as_of=args.as_of,
            dry_run=args.dry_run,
            log_level=args.log_level,
            spark=spark,
            **args.settings,
        )
        print(result.report, flush=True)
        print(f"TAGSYS_RESULT {result_json(result)}", flush=True)
        if glue_job is not None:
            glue_job.commit()
        return 0
    except (TagSysError, RunCancelled) as exc:
        return _fail(exc, str(exc), debug)
    except Exception as exc:  # the job's one boundary: a message, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0][:500]
        return _fail(exc, f"unexpected {type(exc).__name__}: {first}", debug)


def glue_session(argv: Sequence[str]) -> tuple[SparkSession, Any]:
    """Glue's SparkSession and its `Job` (to commit) when awsglue is there, else the session
    of `spark-submit` / a local one. The engine's SQL settings are applied to it."""
    from pyspark.sql import SparkSession

    from tagsys.spark import ENGINE_CONF

    job = None
    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
    except ImportError:
        spark = SparkSession.builder.appName("tagsys-glue").getOrCreate()
    else:
        from pyspark import SparkContext

        from tagsys.glue.args import fallback_resolved_options

        glue_context = GlueContext(SparkContext.getOrCreate())
        spark = glue_context.spark_session
        name = fallback_resolved_options(argv, ["JOB_NAME"]).get("JOB_NAME")
        if name:
            job = Job(glue_context)
            job.init(name, {"JOB_NAME": name})
    for key, value in ENGINE_CONF.items():
        try:
            spark.conf.set(key, value)
        except Exception:  # a static setting of a session that is already running
            log.debug("could not set %s on the job's session", key)
    return spark, job


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("tagsys").setLevel(level)


def _fail(exc: BaseException, message: str, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"Error: {message}", file=sys.stderr, flush=True)
    return 1
