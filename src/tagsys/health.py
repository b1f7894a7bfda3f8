"""`health`: is every part of the product reachable? One line per check, never a secret."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tagsys.errors import TagSysError

if TYPE_CHECKING:
    from tagsys.api import TagSystemAPI


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class HealthReport:
    environment: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def render(self) -> str:
        lines = [f"Health of environment '{self.environment}':"]
        for check in self.checks:
            lines.append(f"  [{'ok' if check.ok else 'FAIL'}] {check.name:<6} {check.detail}")
        lines.append("healthy" if self.ok else "UNHEALTHY: fix the failed checks above")
        return "\n".join(lines)


def run_checks(api: TagSystemAPI) -> HealthReport:
    report = HealthReport(api.settings.env)
    probes = (
        ("store", _store),
        ("runs", _runs),
        ("audiences", _audiences),
        ("lake", _lake),
        ("java", _java),
        ("spark", _spark),
    )
    for name, probe in probes:
        report.checks.append(_attempt(name, functools.partial(probe, api)))
    return report


def _attempt(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except TagSysError as exc:
        return Check(name, False, str(exc))
    except Exception as exc:  # a health check reports every failure, whatever its kind
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def _store(api: TagSystemAPI) -> str:
    from tagsys.store.migrate import current_revision, head_revision, is_original_store

    current = current_revision(api.db_url)
    head = head_revision()
    where = api.settings.safe_database_url
    if current is None and is_original_store(api.db_url):
        raise TagSysError(
            f"{where}: holds the original system's tables (bigdata_tag_system): run "
            "--mode migrate to see how it is adopted in place, then --mode migrate --yes"
        )
    if current != head:
        raise TagSysError(
            f"{where}: schema at {current or 'nothing'}, expected {head}: run --mode migrate"
        )
    return f"{where} (schema {current})"


def _runs(api: TagSystemAPI) -> str:
    """Informational: runs in progress and runs whose process died (abandoned)."""
    runs = api.list_runs(limit=200)
    by_status: dict[str, list[str]] = {}
    for run in runs:
        by_status.setdefault(run.effective_status(), []).append(run.run_id)
    if not runs:
        return "no runs recorded yet"
    latest = runs[0]
    parts = [f"latest {latest.run_id} ({latest.mode}) {latest.effective_status()}"]
    parts += [f"{len(by_status[s])} {s}" for s in ("running", "abandoned") if s in by_status]
    if "abandoned" in by_status:
        parts.append("abandoned runs stopped without finishing: re-run them (see list-runs)")
    return "; ".join(parts)


def _audiences(api: TagSystemAPI) -> str:
    from tagsys.audiences.health import check

    return check(api.audiences.engine)


def _lake(api: TagSystemAPI) -> str:
    tables = api.catalog.tables
    parts = []
    for name, table in sorted(tables.items()):
        dates = table.partition_dates
        part = f", {len(dates)} partitions up to {dates[-1].isoformat()}" if dates else ""
        parts.append(f"{name} ({len(table.columns)} columns{part})")
    return f"{api.settings.lake_root}: {len(tables)} tables: " + "; ".join(parts)


def _java(api: TagSystemAPI) -> str:
    from tagsys.spark import java_version

    return java_version()


def _spark(api: TagSystemAPI) -> str:
    from tagsys.spark import executor_python

    spark = api.spark
    spark.range(1).count()
    executors = executor_python(spark)
    return f"Spark {spark.version}, master {spark.sparkContext.master}; {executors}"
