"""Looking at tags without running them: list-tasks, validate, and explain one user."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from tagsys.errors import FieldError, NotFoundError, RuleError

if TYPE_CHECKING:
    from tagsys.api import TagSystemAPI, TaskInfo
    from tagsys.rules.explain import Explanation
    from tagsys.store.runs import RunRecord
    from tagsys.tasks.base import TagDefinitionView


def _definitions(api: TagSystemAPI) -> list[TagDefinitionView]:
    from tagsys.engine.definitions import tag_definition_views

    api.ensure_store()
    return tag_definition_views(api.db_url)


def task_infos(api: TagSystemAPI) -> list[TaskInfo]:
    """Every tag with its task class, domain and source tables (from its rules and class)."""
    from tagsys.api import TaskInfo
    from tagsys.rules.compiler import rule_columns

    schema = api.catalog.schema()
    infos = []
    for definition in _definitions(api):
        task_class = api.registry.get(definition.tag_id, definition.tag_name)
        tables: set[str] = {t for t in task_class.data_sources.values() if t}
        problem = None
        for rule in definition.rules:
            try:
                tables |= {c.table for c in rule_columns(rule.conditions, schema)}
            except (RuleError, FieldError) as exc:
                problem = str(exc).splitlines()[0]
        infos.append(
            TaskInfo(
                tag_id=definition.tag_id,
                tag_name=definition.tag_name,
                tag_category=definition.tag_category,
                active=definition.is_active and bool(definition.rules) and problem is None,
                task_class=task_class.__name__,
                domain=task_class.domain,
                source_tables=tuple(sorted(tables)),
                rules=len(definition.rules),
                problem=problem,
            )
        )
    return infos


def render_tasks(infos: list[TaskInfo]) -> str:
    lines = [f"{'tag':>4}  {'name':<16} {'category':<10} {'task class':<24} {'domain':<12} sources"]
    for i in infos:
        state = (
            ""
            if i.active
            else " (rule invalid: see --mode validate)"
            if i.problem
            else " (inactive)"
        )
        lines.append(
            f"{i.tag_id:>4}  {i.tag_name[:16]:<16} {i.tag_category[:10]:<10} "
            f"{i.task_class[:24]:<24} {i.domain:<12} {', '.join(i.source_tables)}{state}"
        )
    lines.append(f"{sum(i.active for i in infos)} computable tags of {len(infos)}")
    return "\n".join(lines)


def rule_problems(api: TagSystemAPI) -> list[tuple[int, str, Any]]:
    """(tag id, tag name, RuleProblem) for every problem (errors, then warnings) of every
    active rule."""
    from tagsys.rules.validate import rule_warnings, validate_rule

    schema = api.catalog.schema()
    found = []
    for definition in _definitions(api):
        if not definition.is_active:
            continue
        for rule in definition.rules:
            problems = validate_rule(rule.conditions, schema)
            problems += rule_warnings(rule.conditions, schema)
            found += [
                (definition.tag_id, definition.tag_name, problem.with_rule(rule.rule_id))
                for problem in problems
            ]
    return found


def has_errors(problems: list[tuple[int, str, Any]]) -> bool:
    return any(problem.severity == "error" for _, _, problem in problems)


def render_problems(problems: list[tuple[int, str, Any]]) -> str:
    errors = sum(problem.severity == "error" for _, _, problem in problems)
    if not errors:
        head = "every active rule is valid"
        if not problems:
            return head
    lines = [f"{'tag':>4}  {'name':<16} {'rule':>5}  {'level':<7} {'where':<32} problem"]
    for tag_id, name, problem in problems:
        lines.append(
            f"{tag_id:>4}  {name[:16]:<16} {problem.rule_id:>5}  {problem.severity:<7} "
            f"{problem.location:<32} {problem.message}"
        )
    if errors:
        lines.append(f"{errors} problem(s): these tags are not computed until fixed")
    else:
        lines.append(f"{head}; {len(problems)} warning(s): the rules run, read the warnings")
    return "\n".join(lines)


@dataclass(frozen=True)
class TagExplanation:
    """One tag for one user: each active rule's explanation, and whether the tag applies."""

    tag_id: int
    tag_name: str
    user_id: str
    as_of: date
    active: bool
    rules: list[tuple[int, Explanation]]

    @property
    def applies(self) -> bool:
        return any(explanation.result for _, explanation in self.rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag_id": self.tag_id,
            "tag_name": self.tag_name,
            "user_id": self.user_id,
            "as_of": self.as_of.isoformat(),
            "active": self.active,
            "applies": self.applies,
            "rules": [
                {"rule_id": rule_id, "result": e.result, "root": _plain(asdict(e.root))}
                for rule_id, e in self.rules
            ],
        }

    def render(self) -> str:
        lines = [f"tag {self.tag_id} ({self.tag_name}) for user {self.user_id}, as of {self.as_of}"]
        if not self.active:
            lines.append("  the tag is inactive: runs remove it from every user")
            return "\n".join(lines)
        if not self.rules:
            lines.append("  the tag has no active rule: it applies to no one")
        for rule_id, explanation in self.rules:
            lines.append(f"  rule {rule_id}:")
            lines.extend(f"    {line}" for line in explanation.render())
        verdict = "applies" if self.applies else "does not apply"
        lines.append(f"=> tag {self.tag_id} {verdict} to {self.user_id}")
        return "\n".join(lines)


def explain_tag(api: TagSystemAPI, tag_id: int, user_id: str, as_of: date) -> TagExplanation:
    """Each condition of each active rule of a tag, on one user's lake values."""
    from tagsys.rules.compiler import rule_columns
    from tagsys.rules.explain import explain_rule

    definition = next((d for d in _definitions(api) if d.tag_id == tag_id), None)
    if definition is None:
        raise NotFoundError(f"tag {tag_id} is not defined in tag_definition")
    found = TagExplanation(
        tag_id, definition.tag_name, user_id, as_of, definition.is_active, rules=[]
    )
    if not definition.is_active:
        return found
    schema = api.catalog.schema()
    columns = frozenset().union(*(rule_columns(r.conditions, schema) for r in definition.rules))
    row = _user_row(api, user_id, columns, as_of)  # each table read once for all rules
    for rule in definition.rules:
        found.rules.append((rule.rule_id, explain_rule(rule.conditions, row, schema, as_of)))
    return found


def explain_user(api: TagSystemAPI, tag_id: int, user_id: str, as_of: date) -> str:
    """`explain` as text: the tag's rules on one user's values, condition by condition."""
    return explain_tag(api, tag_id, user_id, as_of).render()


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO text, other values as they are (or their text)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _user_row(api: TagSystemAPI, user_id: str, columns: Any, as_of: date) -> dict[str, Any]:
    """The user's values, read under the run's session settings: a timestamp comes back as
    its wall-clock time in the business time zone, the date a run would compare."""
    from pyspark.sql import functions as F

    from tagsys.lake.reader import read_snapshot
    from tagsys.spark import run_conf

    row: dict[str, Any] = {}
    by_table: dict[str, list[Any]] = {}
    for column in columns:
        by_table.setdefault(column.table, []).append(column)
    with run_conf(api.spark, api.run_conf()):
        for table, found_columns in by_table.items():
            snapshot = api.catalog.snapshot_for(table, as_of)
            frame = read_snapshot(api.spark, snapshot, sorted(c.name for c in found_columns))
            stamps = [c.alias for c in found_columns if c.data_type.startswith("timestamp")]
            frame = frame.select(
                *[
                    F.date_format(name, _STAMP_FORMAT).alias(name) if name in stamps else name
                    for name in frame.columns
                ]
            )
            found = frame.where(F.col("user_id") == user_id).limit(2).collect()
            if found:
                values = found[0].asDict()
                row.update({k: _stamp(v) if k in stamps else v for k, v in values.items()})
    row.pop("user_id", None)
    return row


_STAMP_FORMAT = "yyyy-MM-dd HH:mm:ss.SSSSSS"


def _stamp(text: str | None) -> Any:
    from datetime import datetime

    return None if text is None else datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")


def render_runs(runs: list[RunRecord]) -> str:
    """`list-runs`: one line per run, newest first; abandoned runs say what to do."""
    lines = [
        f"{'run id':<32}  {'mode':<11} {'status':<10} {'as_of':<10}  {'started (UTC)':<19}"
        f"  {'seconds':>7}  {'rows':>9}  where / error"
    ]
    for run in runs:
        status = run.effective_status()
        end = run.finished_at or run.heartbeat_at or run.started_at
        seconds = (end - run.started_at).total_seconds()
        rows = "" if run.rows_written is None else str(run.rows_written)
        where = f"{run.host}:{run.pid}" if run.host else ""
        if status in ("running", "abandoned") and run.phase:
            where += f" ({run.phase})"
        detail = (run.error or "").splitlines()[0][:120] if run.error else where
        lines.append(
            f"{run.run_id:<32}  {run.mode:<11} {status:<10} {run.as_of.isoformat():<10}  "
            f"{run.started_at.strftime('%Y-%m-%d %H:%M:%S'):<19}  {seconds:>7.1f}  {rows:>9}  {detail}"
        )
    abandoned = sum(r.effective_status() == "abandoned" for r in runs)
    if abandoned:
        lines.append(
            f"{abandoned} abandoned run(s): their process stopped without finishing. What they "
            "committed is consistent; run the same request again to complete it."
        )
    if not runs:
        lines.append("no runs recorded yet")
    return "\n".join(lines)
