"""Planning a run: which tags are in scope, how each is computed, which lake columns are read.

Compiling rules to Spark columns needs a SparkSession, but no data is touched here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Literal

from tagsys.errors import FieldError, UsageError
from tagsys.tagsets import TagInfo, TagScope

if TYPE_CHECKING:
    from pyspark.sql import Column

    from tagsys.lake.schema import LakeColumn, LakeSchema
    from tagsys.tasks.base import BaseTagTask, TagDefinitionView
    from tagsys.tasks.registry import TaskRegistry

Mode = Literal["task-all", "task-tags", "task-users", "incremental"]
MODES: tuple[Mode, ...] = ("task-all", "task-tags", "task-users", "incremental")
EARLIEST_AS_OF = date(1900, 1, 1)


@dataclass(frozen=True)
class RunRequest:
    """What a caller asks for. `tag_ids`/`user_ids` None mean all."""

    mode: Mode
    as_of: date
    tag_ids: tuple[int, ...] | None = None
    user_ids: tuple[str, ...] | None = None
    days: int | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"unknown run mode '{self.mode}'; use one of {', '.join(MODES)}")
        if self.as_of < EARLIEST_AS_OF:
            raise UsageError(
                f"as_of {self.as_of.isoformat()} is too early: use a date from "
                f"{EARLIEST_AS_OF.isoformat()} on (rules count up to 100,000 days back from it)"
            )
        if self.mode == "task-tags" and not self.tag_ids:
            raise UsageError("task-tags needs --tag-ids, e.g. --tag-ids 1,3,5")
        if self.mode == "task-users" and not self.user_ids:
            raise UsageError("task-users needs --user-ids, e.g. --user-ids user_000001,user_000002")
        if self.mode == "incremental" and (self.days is None or self.days < 0):
            raise UsageError("incremental needs --days N with N >= 0")
        if self.mode == "task-all" and self.tag_ids is not None:
            raise UsageError("task-all runs every tag; to run some tags use task-tags --tag-ids")
        if self.mode != "task-users" and self.user_ids is not None:
            raise UsageError(f"{self.mode} runs over all users; for some users use task-users")
        if self.tag_ids is not None and len(self.tag_ids) == 0:
            raise UsageError("the tag id list is empty; give at least one tag id")
        if self.user_ids is not None and len(self.user_ids) == 0:
            raise UsageError("the user id list is empty; give at least one user id")


@dataclass(frozen=True)
class TagPlan:
    """One tag that computes in this run."""

    tag_id: int
    info: TagInfo
    task: BaseTagTask
    column: Column
    columns: frozenset[LakeColumn]
    uses_relative_dates: bool
    task_columns: frozenset[LakeColumn] = frozenset()
    """The task's required fields (read for tasks that run as their own job)."""
    text_dates: frozenset[LakeColumn] = frozenset()
    """Text columns its rules read as dates (values that are not dates are counted)."""

    @property
    def one_pass(self) -> bool:
        return type(self.task).runs_in_one_pass()

    @property
    def reads(self) -> frozenset[LakeColumn]:
        """The lake columns this tag needs in a run."""
        return self.columns | (frozenset() if self.one_pass else self.task_columns)


@dataclass(frozen=True)
class TagFault:
    """A tag that failed planning: it is left untouched for every user."""

    tag_id: int
    tag_name: str
    message: str


@dataclass
class RunPlan:
    request: RunRequest
    scope: TagScope
    tags: list[TagPlan] = field(default_factory=list)
    faults: list[TagFault] = field(default_factory=list)
    definitions: dict[int, TagInfo] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)
    """Each tag's definition version as loaded for this run (recorded per tag outcome)."""
    text_dates: list[LakeColumn] = field(default_factory=list)
    """Every text column a planned tag reads as dates, once, in a stable order. The run fixes
    it once the lake is opened, so that a tag failing later does not renumber them."""

    def columns_by_table(self) -> dict[str, set[str]]:
        needed: dict[str, set[str]] = {}
        for tag in self.tags:
            for column in tag.reads:
                needed.setdefault(column.table, set()).add(column.name)
        return needed

    def fail(self, tag: TagPlan, message: str) -> None:
        """Take `tag` out of the run, fail-closed: its assignments stay untouched."""
        self.tags.remove(tag)
        self.faults.append(TagFault(tag.tag_id, tag.info.tag_name, message))
        self.scope = self.scope.with_failed([tag.tag_id])

    @property
    def one_pass_tags(self) -> list[TagPlan]:
        return [t for t in self.tags if t.one_pass]

    @property
    def own_job_tags(self) -> list[TagPlan]:
        return [t for t in self.tags if not t.one_pass]


def plan_run(
    request: RunRequest,
    definitions: Sequence[TagDefinitionView],
    schema: LakeSchema,
    registry: TaskRegistry,
) -> RunPlan:
    """Compile every tag in scope; faults are collected, never raised."""
    by_id = {d.tag_id: d for d in definitions}
    scope_ids = _scope_ids(request, by_id)
    plan = RunPlan(
        request=request,
        scope=TagScope(tag_ids=frozenset(scope_ids), all_tags=request.tag_ids is None),
        definitions={d.tag_id: TagInfo(d.tag_name, d.tag_category) for d in definitions},
        versions={d.tag_id: d.version for d in definitions},
    )
    for tag_id in sorted(scope_ids):
        definition = by_id.get(tag_id)
        if definition is None or not definition.is_active:
            continue
        _plan_tag(plan, definition, schema, registry)
    plan.scope = plan.scope.with_failed(f.tag_id for f in plan.faults)
    plan.text_dates = text_date_columns(plan.tags)
    return plan


def text_date_columns(tags: Sequence[TagPlan]) -> list[LakeColumn]:
    found = {column for tag in tags for column in tag.text_dates}
    return sorted(found, key=lambda c: c.qualified)


def _scope_ids(request: RunRequest, by_id: dict[int, TagDefinitionView]) -> set[int]:
    if request.tag_ids is None:
        return set(by_id)
    unknown = sorted(set(request.tag_ids) - set(by_id))
    if unknown:
        known = ", ".join(str(t) for t in sorted(by_id)) or "(none)"
        raise UsageError(
            f"tag id(s) {', '.join(map(str, unknown))} are not defined in tag_definition; "
            f"defined tags: {known}. (task-all removes tags that were deleted.)"
        )
    return set(request.tag_ids)


def _plan_tag(
    plan: RunPlan, definition: TagDefinitionView, schema: LakeSchema, registry: TaskRegistry
) -> None:
    from tagsys.rules.compiler import TagFailure, compile_tag

    task_class = registry.get(definition.tag_id, definition.tag_name)
    try:
        task = task_class(definition, schema)
        fault = _check_task_fields(task, schema)
    except Exception as exc:  # the task's own code failed: that tag only, fail closed
        fault = f"task {task_class.__name__} failed: {type(exc).__name__}: {exc}"
    if fault:
        plan.faults.append(TagFault(definition.tag_id, definition.tag_name, fault))
        return
    compiled = compile_tag(definition.tag_id, definition.rules, schema, plan.request.as_of)
    if isinstance(compiled, TagFailure):
        plan.faults.append(TagFault(definition.tag_id, definition.tag_name, compiled.message()))
        return
    plan.tags.append(
        TagPlan(
            tag_id=definition.tag_id,
            info=TagInfo(definition.tag_name, definition.tag_category),
            task=task,
            column=compiled.column,
            columns=compiled.columns,
            uses_relative_dates=compiled.uses_relative_dates,
            task_columns=_task_columns(task, schema),
            text_dates=compiled.text_dates,
        )
    )


def _task_columns(task: BaseTagTask, schema: LakeSchema) -> frozenset[LakeColumn]:
    names = task.get_required_fields()
    return frozenset(schema.resolve(n) for n in names if n != schema.user_id_column)


def _check_task_fields(task: BaseTagTask, schema: LakeSchema) -> str | None:
    problems = []
    for name in task.get_required_fields():
        if name == schema.user_id_column:
            continue
        try:
            schema.resolve(name)
        except FieldError as exc:
            problems.append(str(exc))
    for role, table in task.get_data_sources().items():
        if table and table not in schema.tables:
            problems.append(f"data source {role} '{table}' is not a lake table")
    if not problems:
        return None
    return f"task {type(task).__name__} cannot run on this lake: " + "; ".join(problems)


def relative_date_tags(plan: RunPlan) -> list[int]:
    return [t.tag_id for t in plan.tags if t.uses_relative_dates]
