"""Command line: `python main.py --env local --mode MODE [...]` (the seed's interface) and `tagsys`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagsys.errors import RunCancelled, TagSysError, UsageError
from tagsys.settings import LOG_LEVELS
from tagsys.stopping import interrupts, request_stop, stop_requested

if TYPE_CHECKING:
    from tagsys.api import TagSystemAPI
    from tagsys.audiences.query import AudienceCount
    from tagsys.settings import Settings

RUN_MODES = ("task-all", "task-tags", "task-users", "incremental")
MODES = (
    "health",
    "list-tasks",
    "migrate",
    "validate",
    "explain",
    *RUN_MODES,
    "init-db",
    "generate-data",
    "demo",
    "clean-data",
    "list-runs",
    "rollback",
    "history",
    "prune-journal",
    "deploy",
    "serve",
    "preview",
    "tags-export",
    "tags-apply",
    "pack",
    "audience",
    "reindex",
)
DESTRUCTIVE_MODES = frozenset({"init-db", "generate-data", "demo", "clean-data"})
"""Modes that replace or delete data: refused outside `local` unless confirmed."""
MAX_DAYS = 36_500
CLI_PREVIEW_SECONDS = 3600.0
MAX_DEMO_USERS = 1_000_000_000


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tagsys", description="Rule-driven user tagging on Spark and MySQL."
    )
    p.add_argument("--env", default=None, help="environment: local (default), glue-dev, glue-prod")
    p.add_argument("--mode", required=True, choices=MODES, help="what to do")
    p.add_argument("--tag-ids", type=_int_list, help="comma-separated tag ids, e.g. 1,3,5")
    p.add_argument("--user-ids", type=_str_list, help="comma-separated user ids")
    p.add_argument("--tag-id", type=int, help="explain, history: the tag")
    p.add_argument("--user-id", help="explain, history: the user")
    p.add_argument("--run-id", help="rollback: the run to undo")
    p.add_argument("--cursor", help="history: the next page (the cursor the last page printed)")
    p.add_argument("--as-of", type=_date, help="business date YYYY-MM-DD (default: today)")
    p.add_argument(
        "--days", type=int, help="incremental: look back N days; prune-journal: keep N days"
    )
    p.add_argument("--dry-run", action="store_true", help="compute and report, write nothing")
    p.add_argument(
        "--yes",
        action="store_true",
        help="confirm a mode that deletes or replaces data outside `local`, or in an "
        "environment that requires confirmation (without a terminal to ask on); migrate: "
        "apply the shown plan for adopting an original system's database",
    )
    p.add_argument("--limit", type=int, default=20, help="list-runs, history: how many items")
    p.add_argument("--users", type=int, default=10_000, help="generate-data/demo: users")
    p.add_argument(
        "--seed",
        type=int,
        help="generate-data/demo: random seed (42); audience --sample: a repeatable sample",
    )
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.add_argument("--db-url", help="store URL (overrides TAGSYS_DB_URL)")
    p.add_argument("--lake-uri", help="lake root (overrides TAGSYS_LAKE_URI)")
    p.add_argument("--spark-master", help="Spark master (overrides TAGSYS_SPARK_MASTER)")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, help="DEBUG shows tracebacks")
    p.add_argument("--glue-version", help="deploy: AWS Glue version (6.0 default, 5.1, 5.0)")
    p.add_argument(
        "--print-iam-policy",
        action="store_true",
        help="deploy: print the least-privilege policy of the job's role and stop",
    )
    p.add_argument("--wheel", type=Path, help="deploy: a prebuilt tagsys wheel to upload")
    p.add_argument("--rule-file", type=Path, help="preview: a JSON file holding one rule")
    p.add_argument("--dir", type=Path, help="tags export/apply: the folder of tag files")
    p.add_argument("--comment", help="tags apply: why (recorded with each new version)")
    p.add_argument("--expr", help='audience: a JSON expression, e.g. \'{"and": [1, {"not": 3}]}\'')
    p.add_argument("--name", help="audience: a saved audience instead of --expr")
    p.add_argument("--export", help="audience: write the members to a .csv/.parquet path or s3://")
    p.add_argument("--format", choices=("csv", "parquet"), help="audience --export: file format")
    p.add_argument("--sample", type=int, help="audience: print N random members")
    p.add_argument("--host", default="127.0.0.1", help="serve: interface to listen on")
    p.add_argument("--port", type=int, default=5000, help="serve: port (default 5000)")
    p.add_argument(
        "--workers-jobs",
        type=int,
        help="serve: jobs run at once (default TAGSYS_JOB_WORKERS, 3)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path("dist/tagsys_env.tar.gz"),
        help="pack: the archive to write (default dist/tagsys_env.tar.gz)",
    )
    p.add_argument(
        "--python",
        help="pack: the executors' interpreter, an absolute path on them (default: this "
        "environment's base interpreter; same Python version)",
    )
    return p


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of integers like 1,3,5") from exc
    if not values:
        raise argparse.ArgumentTypeError("the list is empty")
    return values


def _str_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("the list is empty")
    return values


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2024-01-31") from exc


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["deploy"], ["serve"], ["pack"]):  # `tagsys deploy ...` is `--mode deploy ...`
        argv = ["--mode", argv[0], *argv[1:]]
    elif argv[:2] in (["tags", "export"], ["tags", "apply"]):  # `--mode tags-export ...`
        argv = ["--mode", f"tags-{argv[1]}", *argv[2:]]
    args = build_parser().parse_args(argv)
    level = (
        args.log_level
        or os.environ.get("TAGSYS_LOG_LEVEL")
        or os.environ.get("LOG_LEVEL")
        or "INFO"
    ).upper()
    logging.basicConfig(
        level=logging.DEBUG if level == "DEBUG" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("tagsys").setLevel(getattr(logging, level, logging.INFO))
    if level != "DEBUG":
        for handler in logging.getLogger().handlers:
            handler.addFilter(_no_tracebacks)
    previous = _stop_gracefully_on_sigterm()
    try:
        _check_bounds(args)
        return _dispatch(args)
    except TagSysError as exc:
        if stop_requested():
            return _report(exc, f"stopped by SIGTERM ({exc})", 143, level)
        return _report(exc, str(exc), exc.exit_code, level)
    except RunCancelled as exc:
        return _report(exc, f"{exc}; a run in progress was recorded as cancelled", 143, level)
    except KeyboardInterrupt as exc:
        return _report(exc, "interrupted", 130, level)
    except Exception as exc:  # the one boundary: nothing reaches the user as a traceback
        if stop_requested():
            return _report(exc, f"stopped by SIGTERM ({type(exc).__name__})", 143, level)
        first = (str(exc).strip().splitlines() or [""])[0][:500]
        message = (
            f"unexpected {type(exc).__name__}: {first}. This is a bug or an unhandled failure "
            "of Spark or the store: run again with --log-level DEBUG for the traceback"
        )
        return _report(exc, message, 1, level)
    finally:
        _restore_sigterm(previous)


def _no_tracebacks(record: logging.LogRecord) -> bool:
    """Below DEBUG, a library's log line keeps its message but not its traceback (py4j logs
    one for every interrupted call)."""
    if record.exc_info and record.exc_info[0] is not None:
        record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
    return not str(record.msg).startswith("KeyboardInterrupt while sending command")


def _report(exc: BaseException, message: str, code: int, level: str) -> int:
    if level == "DEBUG":
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"Error: {message}", file=sys.stderr)
    return code


def _stop_gracefully_on_sigterm() -> object:
    """SIGTERM stops the run like Ctrl-C: Spark jobs cancelled, the run recorded `cancelled`.
    Returns the handler it replaced (None off the main thread, where none is installed)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop is enough
        request_stop()
        if interrupts():  # else a run's final record is being written: it ends on its own
            raise RunCancelled("stopped by SIGTERM")

    return signal.signal(signal.SIGTERM, stop)


def _restore_sigterm(previous: object) -> None:
    """Once main is done, a SIGTERM does what it did before (in a CLI process: end it)."""
    import signal

    if previous is not None:
        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


def _check_bounds(args: argparse.Namespace) -> None:
    """Argument ranges, checked before any work starts."""
    if args.days is not None and not 0 <= args.days <= MAX_DAYS:
        raise UsageError(f"--days must be between 0 and {MAX_DAYS}, not {args.days}")
    if not 1 <= args.users <= MAX_DEMO_USERS:
        raise UsageError(f"--users must be between 1 and {MAX_DEMO_USERS}, not {args.users}")
    if not 1 <= args.limit <= 10_000:
        raise UsageError(f"--limit must be between 1 and 10000, not {args.limit}")
    if not 0 <= args.port <= 65_535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}")
    if args.workers_jobs is not None and not 1 <= args.workers_jobs <= 64:
        raise UsageError(f"--workers-jobs must be between 1 and 64, not {args.workers_jobs}")


def _dispatch(args: argparse.Namespace) -> int:
    from tagsys.api import TagSystemAPI

    overrides = {
        "db_url": args.db_url,
        "lake_uri": args.lake_uri,
        "spark_master": args.spark_master,
    }
    if args.mode == "deploy":
        return _deploy(args, overrides)
    if args.mode == "serve":
        return _serve(args, overrides)
    if args.mode == "pack":
        return _pack(args)
    with TagSystemAPI(args.env, args.log_level, **overrides) as api:
        _confirm(api.settings, args)
        handler = _HANDLERS.get(args.mode, _run)
        return handler(api, args)


def _needs_confirmation(settings: Settings, args: argparse.Namespace) -> str | None:
    """Why this mode must be confirmed here, or None."""
    env = settings.env
    if args.mode in DESTRUCTIVE_MODES and env != "local":
        return f"--mode {args.mode} deletes or replaces data, and the environment is '{env}'"
    writing = (
        *DESTRUCTIVE_MODES,
        "migrate",
        "deploy",
        "rollback",
        "prune-journal",
        "tags-apply",
        *RUN_MODES,
    )
    writes = args.mode in writing and not args.dry_run
    if writes and settings.require_confirmation:
        return f"environment '{env}' requires confirmation (require_confirmation) for --mode {args.mode}"
    return None


def _confirm(settings: Settings, args: argparse.Namespace, target: str | None = None) -> None:
    """Refuse, or ask on a terminal, before a mode that needs confirmation changes anything.
    `target` describes what would change (default: the store and the lake)."""
    reason = _needs_confirmation(settings, args)
    if reason is None or args.yes:
        return
    target = target or f"store {settings.safe_database_url}"
    if not sys.stdin.isatty():
        raise UsageError(
            f"{reason}; nothing was changed ({target}). Add --yes to confirm, or point "
            "--env/--db-url at the environment you meant"
        )
    env = settings.env
    print(f"{reason}.\nTarget: {target}\nLake: {settings.lake_root}", file=sys.stderr)
    answer = input(f"Type the environment name ({env}) to go on: ").strip()
    if answer != env:
        raise UsageError(f"not confirmed (typed {answer!r}, expected {env!r}); nothing was changed")


def _deploy(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """`tagsys deploy --env glue-dev|glue-prod [--dry-run] [--yes] [--glue-version V]`."""
    from tagsys.errors import ConfigError
    from tagsys.glue.deploy import check_settings, deploy, plan_deploy, refuse_unloadable
    from tagsys.settings import load_settings

    overrides = {**overrides, "glue_version": args.glue_version}
    try:
        settings = load_settings(args.env, log_level=args.log_level, **overrides)
    except ConfigError as exc:
        raise refuse_unloadable(args.env, str(exc)) from None
    check_settings(settings)
    if args.print_iam_policy:
        from tagsys.glue.iam import job_policy

        plan = plan_deploy(settings, "tagsys.whl")
        policy = job_policy(plan, settings.lake_uri or "", settings.glue_connection)
        print(json.dumps(policy, indent=2))
        return 0
    job = settings.glue_job_name or settings.env
    _confirm(settings, args, f"Glue job {job}, bucket s3://{settings.scripts_bucket}")
    deploy(settings, dry_run=args.dry_run, wheel=args.wheel)
    return 0


def _serve(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """`tagsys serve --env ENV [--host H] [--port P] [--workers-jobs N]`: the REST service."""
    from tagsys.service.server import serve
    from tagsys.settings import load_settings

    if args.workers_jobs is not None:
        overrides = {**overrides, "job_workers": args.workers_jobs}
    settings = load_settings(args.env, log_level=args.log_level, **overrides)
    serve(settings, args.host, args.port)
    return 0


def _pack(args: argparse.Namespace) -> int:
    """`tagsys pack [--output PATH] [--python PATH]`: the executors' Python environment."""
    from tagsys.pack import build

    print(build(args.output, args.python).render())
    return 0


def _health(api: TagSystemAPI, args: argparse.Namespace) -> int:
    report = api.health()
    print(report.render())
    return 0 if report.ok else 1


def _list_tasks(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.introspect import render_tasks

    print(render_tasks(api.list_tasks()))
    return 0


def _migrate(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.store.migrate import adoption_plan, upgrade

    plan = adoption_plan(api.db_url)
    if plan is not None:
        print(plan.render())
    revision = upgrade(api.db_url, adopt=args.yes)
    print(f"store {api.settings.safe_database_url} is at schema revision {revision}")
    return 0


def _list_runs(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.introspect import render_runs

    print(render_runs(api.list_runs(limit=args.limit)))
    return 0


def _validate(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.introspect import has_errors, render_problems

    problems = api.validate_rules()
    print(render_problems(problems))
    return 1 if has_errors(problems) else 0


def _explain(api: TagSystemAPI, args: argparse.Namespace) -> int:
    if args.tag_id is None or not args.user_id:
        raise UsageError("explain needs --tag-id N --user-id ID")
    print(api.explain(args.tag_id, args.user_id, args.as_of))
    return 0


def _run(api: TagSystemAPI, args: argparse.Namespace) -> int:
    request = api.request(
        args.mode,
        tag_ids=args.tag_ids,
        user_ids=args.user_ids,
        as_of=args.as_of,
        days=args.days,
        dry_run=args.dry_run,
    )
    summary = api.run(request)
    print(json.dumps(summary.to_dict(), ensure_ascii=False) if args.json else summary.render())
    return 0 if summary.succeeded else 1


def _rollback(api: TagSystemAPI, args: argparse.Namespace) -> int:
    if not args.run_id:
        raise UsageError("rollback needs --run-id RUN (`--mode list-runs` lists the runs)")
    from tagsys.history.rollback import RollbackStopped

    try:
        result = api.rollback(args.run_id, dry_run=args.dry_run)
    except RollbackStopped as stopped:  # what it restored before it stopped, and its run id
        result = stopped.result
    print(json.dumps(result.to_dict(), ensure_ascii=False) if args.json else result.render())
    return 0 if result.status == "completed" else 1


def _history(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.history.render import render_tag_page, render_user_page

    if (args.user_id is None) == (args.tag_id is None):
        raise UsageError(
            "history needs --user-id U (a user's changes) or --tag-id N (a tag's runs)"
        )
    if args.user_id is not None:
        user_page = api.user_history(args.user_id, args.cursor, args.limit)
        data, text = user_page.to_dict(), render_user_page(user_page)
    else:
        tag_page = api.tag_history(args.tag_id, args.cursor, args.limit)
        data, text = tag_page.to_dict(), render_tag_page(tag_page)
    print(json.dumps(data, ensure_ascii=False) if args.json else text)
    return 0


def _prune_journal(api: TagSystemAPI, args: argparse.Namespace) -> int:
    print(api.prune_journal(args.days).render())
    return 0


def _init_db(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.demo.loader import load_seed_tags
    from tagsys.store.migrate import upgrade

    upgrade(api.db_url)
    count = load_seed_tags(api.db_url, replace_edited=args.yes)
    print(f"store {api.settings.safe_database_url}: schema ready, {count} demo tags loaded")
    return 0


def _generate_data(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.demo.loader import write_demo_lake

    as_of = args.as_of or api.settings.today()
    tables = write_demo_lake(
        api.settings.lake_root, args.users, as_of, seed=42 if args.seed is None else args.seed
    )
    print(f"demo lake at {api.settings.lake_root}: {args.users} users, tables {', '.join(tables)}")
    return 0


def _demo(api: TagSystemAPI, args: argparse.Namespace) -> int:
    return _init_db(api, args) or _generate_data(api, args)


def _clean_data(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.demo.loader import clean

    print(clean(api.db_url, api.settings.lake_root))
    return 0


def _preview(api: TagSystemAPI, args: argparse.Namespace) -> int:
    if args.rule_file is None:
        raise UsageError("preview needs --rule-file rule.json (one rule, as in a tag's rules)")
    try:
        rule = json.loads(args.rule_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the rule in {args.rule_file}: {exc}") from exc
    # A new process reads the lake first: no service worker to protect, so wait (Ctrl-C stops).
    result = api.preview_rule(rule, args.as_of, tag_id=args.tag_id, timeout=CLI_PREVIEW_SECONDS)
    if args.json:
        print(json.dumps(result.view(), ensure_ascii=False))
        return 0
    print(f"as of {result.as_of}: {result.matched} of {result.users} users match")
    for condition in result.conditions:
        print(f"  {condition['location']} alone: {condition['matched']}")
    if result.tag_id is not None:
        print(
            f"  tag {result.tag_id}: {result.stored} users now; +{result.added} added, "
            f"-{result.removed} removed"
        )
    print(f"  sample: {', '.join(result.sample) or '(none)'}  ({result.seconds:.2f}s)")
    return 0


def _tag_folder(args: argparse.Namespace) -> Path:
    if args.dir is None:
        raise UsageError(f"{args.mode.replace('-', ' ')} needs --dir FOLDER, e.g. --dir tags/")
    return Path(args.dir)


def _tags_export(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.management.files import export

    paths = export(api.tag_manager(), _tag_folder(args))
    print(f"wrote {len(paths)} file(s) to {_tag_folder(args)}")
    return 0


def _tags_apply(api: TagSystemAPI, args: argparse.Namespace) -> int:
    import getpass

    from tagsys.management.files import apply
    from tagsys.management.manager import Actor

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    actor = Actor(user, args.comment or f"tagsys tags apply --dir {args.dir}")
    plan = apply(api.tag_manager(), _tag_folder(args), actor, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(plan.view(), ensure_ascii=False))
    else:
        print(plan.render())
        done = "nothing to do" if plan.empty else "dry run: nothing changed"
        print(done if args.dry_run or plan.empty else f"applied as {user}")
    return 0


def _audience(api: TagSystemAPI, args: argparse.Namespace) -> int:
    """`--mode audience --expr JSON | --name SAVED [--export PATH] [--sample N]`."""
    expression = _expression(api, args)
    api.refresh_index(quick=True)
    if args.export:
        result = api.audiences.export(expression, args.export, args.format)
        data: dict[str, Any] = {"path": result.path, "format": result.format, "rows": result.rows}
        text = f"exported {result.rows} users to {result.path} ({result.format})"
    elif args.sample is not None:
        page = api.audiences.sample(expression, args.sample, args.seed)
        data = {"count": page.count, "users": page.users}
        text = "\n".join([f"{page.count} users; a sample of {len(page.users)}:", *page.users])
    else:
        count = api.audience(expression)
        data, text = count.to_dict(), _render_count(count)
    print(json.dumps(data, ensure_ascii=False, default=str) if args.json else text)
    return 0


def _expression(api: TagSystemAPI, args: argparse.Namespace) -> Any:
    if (args.expr is None) == (args.name is None):
        raise UsageError("audience needs --expr JSON (e.g. '{\"and\": [1, 2]}') or --name SAVED")
    if args.name is not None:
        return api.audiences.expression_of(args.name)
    try:
        return json.loads(args.expr)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--expr is not JSON ({exc}); a tag name goes in quotes: '\"vip\"'"
        ) from exc


def _render_count(count: AudienceCount) -> str:
    lines = [f"{count.count} users match {json.dumps(count.expression, ensure_ascii=False)}"]
    lines += [f"  operand {json.dumps(o.expression)}: {o.count}" for o in count.operands]
    lines += [f"  tag {t.tag_id} {t.tag_name}: {t.count}" for t in count.tags]
    lines.append(f"  (index generation {count.index.generation}, run {count.index.run_id})")
    return "\n".join(lines)


def _reindex(api: TagSystemAPI, args: argparse.Namespace) -> int:
    print(api.reindex().render())
    return 0


_HANDLERS = {
    "health": _health,
    "list-tasks": _list_tasks,
    "migrate": _migrate,
    "validate": _validate,
    "explain": _explain,
    "init-db": _init_db,
    "generate-data": _generate_data,
    "demo": _demo,
    "clean-data": _clean_data,
    "list-runs": _list_runs,
    "rollback": _rollback,
    "history": _history,
    "prune-journal": _prune_journal,
    "preview": _preview,
    "tags-export": _tags_export,
    "tags-apply": _tags_apply,
    "audience": _audience,
    "reindex": _reindex,
}


if __name__ == "__main__":
    sys.exit(main())
