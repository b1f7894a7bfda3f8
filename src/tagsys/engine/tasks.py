"""Tasks that override the DataFrame hooks: each runs as its own sub-plan, unioned in.

Their input has the lake's natural column names (as the seed's task API shows); the rule is
evaluated after `preprocess_data`, then `post_process_result` sees the matched users.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import TYPE_CHECKING

from tagsys.engine.frames import USER, restrict_users
from tagsys.engine.plan import RunPlan, TagFault, TagPlan

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from tagsys.engine.run import RunContext

EXTRA = "extra"


def own_job_matches(
    ctx: RunContext, plan: RunPlan, users: Sequence[str] | DataFrame | None
) -> DataFrame | None:
    """(user_id, extra: array of matched tag ids) for the tasks with their own job."""
    from pyspark.sql import functions as F

    matches = []
    for tag in list(plan.own_job_tags):
        frame = _task_input(ctx, plan, tag, users)
        prepared = tag.task.preprocess_data(frame)
        if not tag.task.validate_data(prepared):
            _fail(plan, tag, f"{type(tag.task).__name__}.validate_data rejected its input")
            continue
        evaluated = prepared.select(
            USER, *[F.col(c.name).alias(c.alias) for c in tag.columns if c.name in prepared.columns]
        )
        matched = tag.task.post_process_result(evaluated.where(tag.column).select(USER))
        matches.append(matched.select(USER).withColumn("tag", F.lit(tag.tag_id)))
    if not matches:
        return None
    union = reduce(lambda a, b: a.unionByName(b), matches)
    return union.groupBy(USER).agg(F.array_sort(F.collect_set("tag")).alias(EXTRA))


def _task_input(
    ctx: RunContext, plan: RunPlan, tag: TagPlan, users: Sequence[str] | DataFrame | None
) -> DataFrame:
    """The task's data sources and rule tables joined on the user id, natural column names."""
    from pyspark.sql import functions as F

    from tagsys.lake.reader import read_snapshot

    sources = [t for t in tag.task.get_data_sources().values() if t]
    tables = list(dict.fromkeys([*sources, *sorted({c.table for c in tag.columns})]))
    schema = ctx.catalog.schema()
    seen: set[str] = set()
    parts = []
    for table in tables:
        names = sorted(schema.tables[table])
        frame = read_snapshot(ctx.spark, ctx.catalog.snapshot_for(table, plan.request.as_of), names)
        renamed = [F.col(USER)]
        for name in names:
            if name not in seen:
                renamed.append(F.col(f"{table}__{name}").alias(name))
                seen.add(name)
        parts.append(restrict_users(frame.select(*renamed), users))
    return reduce(lambda a, b: a.join(b, USER, "left"), parts)


def _fail(plan: RunPlan, tag: TagPlan, message: str) -> None:
    plan.tags.remove(tag)
    plan.faults.append(TagFault(tag.tag_id, tag.info.tag_name, message))
    plan.scope = plan.scope.with_failed([tag.tag_id])
