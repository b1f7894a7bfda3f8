"""Tasks that override the DataFrame hooks: each runs as its own sub-plan, unioned in.

They start from the run's one-row-per-user frame (every lake table read once), so a user
missing from a table has nulls there, as in the single pass. Their input names columns as
the lake does (`total_asset_value`); a name found in several tables keeps its qualified
`table__column` form. The rule is evaluated after `preprocess_data` (on the values the hook
left), then `post_process_result` sees the matched users.
"""

from __future__ import annotations

from collections import Counter
from functools import reduce
from typing import TYPE_CHECKING

from tagsys.engine.frames import IN_LAKE, USER
from tagsys.engine.plan import RunPlan, TagPlan

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from tagsys.lake.schema import LakeColumn

EXTRA = "extra"


def own_job_matches(plan: RunPlan, base: DataFrame) -> DataFrame | None:
    """(user_id, extra: sorted ids of matched tags) for the tasks with their own job."""
    from pyspark.sql import functions as F

    matches = []
    for tag in list(plan.own_job_tags):
        try:
            matched = _own_job(tag, base)
        except Exception as exc:  # the task's own code failed: that tag only, fail closed
            plan.fail(tag, f"{type(tag.task).__name__} failed: {type(exc).__name__}: {exc}")
            continue
        if matched is None:
            plan.fail(tag, f"{type(tag.task).__name__}.validate_data rejected its input")
            continue
        matches.append(matched.withColumn("tag", F.lit(tag.tag_id)))
    if not matches:
        return None
    union = reduce(lambda a, b: a.unionByName(b), matches)
    return union.groupBy(USER).agg(F.array_sort(F.collect_set("tag")).alias(EXTRA))


def _own_job(tag: TagPlan, base: DataFrame) -> DataFrame | None:
    """The users the task matches (None when its validate_data rejects its input)."""
    columns = tag.columns | tag.task_columns
    natural = _natural_names(columns)
    prepared = tag.task.preprocess_data(_task_input(base, columns, natural))
    if not tag.task.validate_data(prepared):
        return None
    rule_input = prepared.select(USER, *[_rule_value(c, prepared, natural) for c in tag.columns])
    matched = tag.task.post_process_result(rule_input.where(tag.column).select(USER))
    return matched.select(USER)


def _natural_names(columns: frozenset[LakeColumn]) -> dict[str, str]:
    """alias -> lake column name, for the names that only one of the columns has."""
    counts = Counter(c.name for c in columns)
    return {c.alias: c.name for c in columns if counts[c.name] == 1}


def _task_input(
    base: DataFrame, columns: frozenset[LakeColumn], natural: dict[str, str]
) -> DataFrame:
    from pyspark.sql import functions as F

    selected = [
        F.col(c.alias).alias(natural.get(c.alias, c.alias))
        for c in sorted(columns, key=lambda c: c.alias)
    ]
    return base.where(F.col(IN_LAKE)).select(USER, *selected)


def _rule_value(column: LakeColumn, prepared: DataFrame, natural: dict[str, str]) -> Column:
    from pyspark.sql import functions as F

    name = natural.get(column.alias, column.alias)
    if name in prepared.columns:
        return F.col(name).alias(column.alias)
    return F.lit(None).cast(column.data_type).alias(column.alias)
