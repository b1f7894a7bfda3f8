"""Command line: `python main.py --env local --mode MODE [...]` (the seed's interface) and `tagsys`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from tagsys.errors import TagSysError, UsageError

if TYPE_CHECKING:
    from tagsys.api import TagSystemAPI

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
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tagsys", description="Rule-driven user tagging on Spark and MySQL."
    )
    p.add_argument("--env", default=None, help="environment: local (default), glue-dev, glue-prod")
    p.add_argument("--mode", required=True, choices=MODES, help="what to do")
    p.add_argument("--tag-ids", type=_int_list, help="comma-separated tag ids, e.g. 1,3,5")
    p.add_argument("--user-ids", type=_str_list, help="comma-separated user ids")
    p.add_argument("--tag-id", type=int, help="explain: the tag")
    p.add_argument("--user-id", help="explain: the user")
    p.add_argument("--as-of", type=_date, help="business date YYYY-MM-DD (default: today)")
    p.add_argument("--days", type=int, help="incremental: look back N days")
    p.add_argument("--dry-run", action="store_true", help="compute and report, write nothing")
    p.add_argument("--users", type=int, default=10_000, help="generate-data/demo: users")
    p.add_argument("--seed", type=int, default=42, help="generate-data/demo: random seed")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.add_argument("--db-url", help="store URL (overrides TAGSYS_DB_URL)")
    p.add_argument("--lake-uri", help="lake root (overrides TAGSYS_LAKE_URI)")
    p.add_argument("--spark-master", help="Spark master (overrides TAGSYS_SPARK_MASTER)")
    p.add_argument("--log-level", default=None, help="DEBUG shows tracebacks")
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
    try:
        return _dispatch(args)
    except TagSysError as exc:
        if level == "DEBUG":
            logging.exception("failed")
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from tagsys.api import TagSystemAPI

    overrides = {
        "db_url": args.db_url,
        "lake_uri": args.lake_uri,
        "spark_master": args.spark_master,
    }
    with TagSystemAPI(args.env, args.log_level, **overrides) as api:
        handler = _HANDLERS.get(args.mode, _run)
        return handler(api, args)


def _health(api: TagSystemAPI, args: argparse.Namespace) -> int:
    report = api.health()
    print(report.render())
    return 0 if report.ok else 1


def _list_tasks(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.introspect import render_tasks

    print(render_tasks(api.list_tasks()))
    return 0


def _migrate(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.store.migrate import upgrade

    revision = upgrade(api.db_url)
    print(f"store {api.settings.safe_database_url} is at schema revision {revision}")
    return 0


def _validate(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.introspect import render_problems

    problems = api.validate_rules()
    print(render_problems(problems))
    return 1 if problems else 0


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


def _init_db(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.demo.loader import load_seed_tags
    from tagsys.store.migrate import upgrade

    upgrade(api.db_url)
    count = load_seed_tags(api.db_url)
    print(f"store {api.settings.safe_database_url}: schema ready, {count} demo tags loaded")
    return 0


def _generate_data(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.demo.loader import write_demo_lake

    as_of = args.as_of or api.settings.today()
    tables = write_demo_lake(api.settings.lake_root, args.users, as_of, seed=args.seed)
    print(f"demo lake at {api.settings.lake_root}: {args.users} users, tables {', '.join(tables)}")
    return 0


def _demo(api: TagSystemAPI, args: argparse.Namespace) -> int:
    return _init_db(api, args) or _generate_data(api, args)


def _clean_data(api: TagSystemAPI, args: argparse.Namespace) -> int:
    from tagsys.demo.loader import clean

    print(clean(api.db_url, api.settings.lake_root))
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
}


if __name__ == "__main__":
    sys.exit(main())
