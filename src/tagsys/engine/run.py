"""Executing a planned run: read, compute in one pass, merge with existing rows, write changes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tagsys.engine import frames
from tagsys.engine.io import existing_frame, in_key_ranges, product_errors, write_candidates
from tagsys.engine.plan import (
    RunPlan,
    RunRequest,
    plan_run,
    relative_date_tags,
    text_date_columns,
)
from tagsys.engine.summary import PhaseTimer, RunSummary, TagOutcome
from tagsys.engine.tasks import own_job_matches
from tagsys.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from tagsys.lake.catalog import LakeCatalog
    from tagsys.tasks.base import TagDefinitionView
    from tagsys.tasks.registry import TaskRegistry

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """Everything a run touches, opened once by the caller (CLI, API, service, Glue)."""

    spark: SparkSession
    catalog: LakeCatalog
    db_url: str
    registry: TaskRegistry
    write_batch_size: int = 2000
    write_partitions: int | None = None
    change_columns: dict[str, str] = field(default_factory=dict)
    journal: bool = True
    """Journal every row written (see `tagsys.store.journal`)."""
    on_phase: Callable[[str], None] | None = None
    """Called as each phase starts (the run's record notes it)."""


def new_summary(request: RunRequest, run_id: str | None = None) -> RunSummary:
    """The summary of a run that starts now, with a new run id unless one is given."""
    return RunSummary(
        run_id=run_id or uuid.uuid4().hex,
        mode=request.mode,
        as_of=request.as_of,
        tag_scope=list(request.tag_ids) if request.tag_ids else "all",
        user_scope=_describe_users(request),
        dry_run=request.dry_run,
        started_at=datetime.now(UTC),
    )


def execute(request: RunRequest, ctx: RunContext, summary: RunSummary | None = None) -> RunSummary:
    """Run `request` and return its summary (recorded in the store by the caller)."""
    summary = summary or new_summary(request)
    timer = PhaseTimer(summary.phases, on_start=ctx.on_phase)
    with timer("plan"):
        plan = plan_run(request, load_definitions(ctx.db_url), ctx.catalog.schema(), ctx.registry)
    cached: list[DataFrame] = []
    try:
        users = _run_users(request, ctx, plan, summary, cached)
        with timer("compute"), product_errors():
            frame = _merged_frame(plan, ctx, users, cached)
            stats = frames.stats_row(frame, len(plan.text_dates))
            _check_duplicates(frame, stats)
            per_tag = frames.per_tag_counts(frame, stats["revised"] > 0)
        with timer("write"), product_errors():
            summary.written_at = None if request.dry_run else datetime.now(UTC)
            counts = _write(frame, plan, ctx, stats, summary, ctx.journal)
    finally:
        for persisted in cached:
            persisted.unpersist()
    _fill_summary(summary, plan, stats, per_tag, counts)
    summary.finished_at = datetime.now(UTC)
    return summary


def load_definitions(db_url: str) -> list[TagDefinitionView]:
    from tagsys.engine.definitions import tag_definition_views

    return tag_definition_views(db_url)


def _describe_users(request: RunRequest) -> str:
    if request.mode == "incremental":
        return f"changed in the last {request.days} days"
    if request.user_ids is not None:
        return f"{len(request.user_ids)} listed"
    return "all"


def _run_users(
    request: RunRequest,
    ctx: RunContext,
    plan: RunPlan,
    summary: RunSummary,
    cached: list[DataFrame],
) -> Sequence[str] | DataFrame | None:
    if request.mode != "incremental":
        return request.user_ids
    from tagsys.engine.incremental import changed_users

    relative = relative_date_tags(plan)
    if relative:
        summary.notes.append(
            "incremental runs recompute only users whose lake rows changed; tags with relative "
            f"dates ({', '.join(map(str, relative))}) also change with as_of alone: run "
            "task-tags for them to refresh every user"
        )
    assert request.days is not None
    changed = changed_users(ctx.spark, ctx.catalog, request.as_of, request.days, ctx.change_columns)
    cached.append(changed.persist())  # used by every table's filter: compute the diff once
    return changed


def _merged_frame(
    plan: RunPlan,
    ctx: RunContext,
    users: Sequence[str] | DataFrame | None,
    cached: list[DataFrame],
) -> DataFrame:
    """The run's users with computed, old and new tag sets (persisted: several actions use it)."""
    from pyspark.sql import functions as F

    from tagsys.store.writer import id_stats

    stored = id_stats(ctx.db_url)
    base, partitions = _user_frame(plan, ctx, users, 0 if stored is None else stored[0])
    plan.text_dates = text_date_columns(plan.tags)  # tags lacking columns in the data are out
    if plan.own_job_tags:
        base = base.persist()  # the own-job tasks start from the same frame: read it once
        cached.append(base)
    flags = frames.unparsed_date_flags(plan.text_dates)
    computed = base.select(
        frames.USER,
        frames.DUPLICATE,
        frames.tag_array(plan.one_pass_tags).alias(frames.COMPUTED),
        *flags,
    )
    extra = own_job_matches(plan, base)
    if extra is not None:
        computed = computed.join(extra, frames.USER, "left").select(
            frames.USER,
            frames.DUPLICATE,
            F.array_sort(
                F.array_union(frames.COMPUTED, F.coalesce("extra", F.array().cast("array<int>")))
            ).alias(frames.COMPUTED),
            *[f"{frames.UNPARSED}{i}" for i in range(len(flags))],
        )
    user_list = users if isinstance(users, list | tuple) else None
    readers = ctx.spark.sparkContext.defaultParallelism
    existing = existing_frame(ctx.spark, ctx.db_url, user_list, readers, stored)
    joined = frames.with_existing(computed, existing, users is None, partitions)
    merged = frames.merged(joined, plan.scope, plan.definitions).persist()
    cached.append(merged)
    return merged


def _user_frame(
    plan: RunPlan, ctx: RunContext, users: Sequence[str] | DataFrame | None, stored_rows: int
) -> tuple[DataFrame, int]:
    """Every lake table read once (the columns of rules and own-job tasks), one row per user,
    and the number of partitions it is shuffled into (sized by the data: `engine.sizing`)."""
    from tagsys.engine.sizing import shuffle_partitions
    from tagsys.lake.reader import open_snapshot, select_snapshot

    as_of = plan.request.as_of
    snapshots = {t: ctx.catalog.snapshot_for(t, as_of) for t in sorted(ctx.catalog.tables)}
    opened = {t: open_snapshot(ctx.spark, snapshot) for t, snapshot in snapshots.items()}
    _fail_tags_without_columns(plan, {t: set(frame.columns) for t, frame in opened.items()})
    needed = plan.columns_by_table()
    inputs = [
        frames.TableInput(
            table, select_snapshot(opened[table], snapshot, sorted(needed.get(table, ())))
        )
        for table, snapshot in snapshots.items()
    ]
    listed = isinstance(users, list | tuple)
    partitions = shuffle_partitions(ctx.spark, list(opened.values()), stored_rows, listed)
    return frames.user_frame(ctx.spark, inputs, users, partitions), partitions


def _fail_tags_without_columns(plan: RunPlan, available: dict[str, set[str]]) -> None:
    """A backfill reads an older partition, which may predate a column: only the tags that
    need it fail."""
    for tag in list(plan.tags):
        lacking = sorted(
            c.qualified for c in tag.reads if c.name not in available.get(c.table, set())
        )
        if lacking:
            plan.fail(
                tag,
                f"the lake data this run reads (as_of {plan.request.as_of.isoformat()}) has no "
                f"column {', '.join(lacking)}: an older partition predates it; run with a later "
                "--as-of, or add the column to that partition",
            )


def _check_duplicates(frame: DataFrame, stats: dict[str, int]) -> None:
    if not stats.get("duplicates"):
        return
    examples = frames.duplicate_examples(frame)
    where = "; ".join(f"table '{t}': {', '.join(ids)}" for t, ids in sorted(examples.items()))
    raise DataError(
        f"{stats['duplicates']} user id(s) appear more than once in the rows this run reads "
        f"({where}). Each table must hold one row per user in a snapshot: fix the data; "
        "nothing was written."
    )


def _write(
    frame: DataFrame,
    plan: RunPlan,
    ctx: RunContext,
    stats: dict[str, int],
    summary: RunSummary,
    journal: bool,
) -> tuple[int, int, int]:
    """Write the candidate rows; a dry run (no `written_at`) has the writers decide exactly
    what they would write, reading without locks and writing nothing."""
    from pyspark.sql import functions as F

    from tagsys.store.writer import WriteRequest, max_concurrent_writers

    if not stats["candidates"]:  # nothing can change: no writer needs to look
        return 0, 0, stats["existing_rows"]
    request = WriteRequest(
        db_url=ctx.db_url,
        scope=plan.scope,
        definitions=plan.definitions,
        batch_size=ctx.write_batch_size,
        written_at=summary.written_at or datetime.now(UTC),
        dry_run=summary.written_at is None,
        run_id=summary.run_id if journal else None,
        fence_run=summary.run_id,
    )
    writers = max_concurrent_writers(ctx.db_url) or ctx.write_partitions
    needed = [frames.USER, frames.COMPUTED, frames.NEW_IDS, frames.HAS_ROW]
    ranges = in_key_ranges(frame.where(F.col(frames.CANDIDATE)).select(*needed), writers)
    counts = write_candidates(frames.with_new_rows(ranges, plan.definitions), request)
    untouched = stats["existing_rows"] - counts.updated
    return counts.inserted, counts.updated, untouched


def _fill_summary(
    summary: RunSummary,
    plan: RunPlan,
    stats: dict[str, int],
    per_tag: dict[tuple[int, int], int],
    counts: tuple[int, int, int],
) -> None:
    summary.users_evaluated = stats.get("users_evaluated", 0)
    summary.rows_inserted, summary.rows_updated, summary.rows_unchanged = counts
    unparsed = {
        column.qualified: stats.get(f"{frames.UNPARSED}{index}", 0)
        for index, column in enumerate(plan.text_dates)
    }
    for tag in plan.tags:
        summary.tags.append(
            TagOutcome(
                tag_id=tag.tag_id,
                tag_name=tag.info.tag_name,
                status="ok",
                task=type(tag.task).__name__,
                matched=per_tag.get((tag.tag_id, frames.MATCHED), 0),
                added=per_tag.get((tag.tag_id, frames.ADDED), 0),
                removed=per_tag.get((tag.tag_id, frames.REMOVED), 0),
                unparsed_dates={
                    c.qualified: unparsed[c.qualified]
                    for c in sorted(tag.text_dates, key=lambda c: c.qualified)
                    if unparsed[c.qualified]
                },
                version=plan.versions.get(tag.tag_id),
            )
        )
    for fault in plan.faults:
        summary.tags.append(
            TagOutcome(
                fault.tag_id,
                fault.tag_name,
                "failed",
                message=fault.message,
                version=plan.versions.get(fault.tag_id),
            )
        )
    planned = {t.tag_id for t in plan.tags} | {f.tag_id for f in plan.faults}
    cleared = sorted((set(plan.scope.tag_ids) | {tag for tag, _ in per_tag}) - planned)
    for tag_id in cleared:
        info = plan.definitions.get(tag_id)
        summary.tags.append(
            TagOutcome(
                tag_id,
                info.tag_name if info else f"(deleted tag {tag_id})",
                "cleared",
                removed=per_tag.get((tag_id, frames.REMOVED), 0),
                message="inactive, deleted or without rules: removed from users",
                version=plan.versions.get(tag_id),
            )
        )
    summary.tags.sort(key=lambda t: t.tag_id)
