"""The Spark side of a run: one row per user, every tag as a column, merged with existing rows.

Each lake table is scanned once (only the needed columns of the chosen snapshot). The tables
are stacked and grouped by user id in one shuffle, which also counts rows per table so a
duplicated user id is found without a second scan.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

from tagsys.tagsets import TagInfo, TagScope

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from tagsys.engine.plan import TagPlan
    from tagsys.lake.schema import LakeColumn

USER = "user_id"
COMPUTED = "computed"
OLD_IDS = "old_ids"
OLD_IDS_JSON = "tag_ids"
OLD_DETAILS_DIGEST = "details_digest"
NEW_IDS = "new_ids"
NEW_IDS_JSON = "new_tag_ids"
NEW_DETAILS_JSON = "new_tag_details"
IN_RUN = "_in_run"
HAS_ROW = "_has_row"
DUPLICATE = "_dup_tables"
IN_LAKE = "_in_lake"
CANDIDATE = "_candidate"
UNPARSED = "_unparsed_"
_LIST_FILTER_LIMIT = 5000


@dataclass(frozen=True)
class TableInput:
    """One lake table as read for this run: its frame (user_id + aliased columns)."""

    table: str
    frame: DataFrame


def restrict_users(frame: DataFrame, users: Sequence[str] | DataFrame | None) -> DataFrame:
    """Keep only the run's users: a short list is pushed down as IN, else a semi join."""
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import functions as F

    if users is None:
        return frame
    if isinstance(users, SparkFrame):  # changed users of an incremental run: may be large
        return frame.join(users.select(USER), USER, "left_semi")
    if len(users) <= _LIST_FILTER_LIMIT:
        return frame.where(F.col(USER).isin(list(users)))
    spark = frame.sparkSession
    ids = spark.createDataFrame([(u,) for u in users], f"{USER} string")
    return frame.join(F.broadcast(ids), USER, "left_semi")


def user_frame(
    spark: SparkSession,
    inputs: Sequence[TableInput],
    users: Sequence[str] | DataFrame | None,
    partitions: int | None = None,
) -> DataFrame:
    """One row per user of the population (or of the user list), with every needed column.

    `_dup_tables` lists the tables in which the user id appears more than once; `_in_lake`
    is false for a listed user found in no table (no tag is computed for such a user).
    `partitions`: of the shuffle by user (None: the session's setting).
    """
    from pyspark.sql import functions as F

    value_columns = [c for i in inputs for c in i.frame.columns if c != USER]
    stacked = []
    for index, item in enumerate(inputs):
        frame = restrict_users(item.frame, users)
        stacked.append(frame.withColumn(f"_n{index}", F.lit(1)))
    if users is not None:
        stacked.append(_user_list_frame(spark, users))
    union = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), stacked)
    aggregates = [F.first(c, ignorenulls=True).alias(c) for c in value_columns]
    counts = [F.sum(f"_n{i}").alias(f"_n{i}") for i in range(len(inputs))]
    # Shuffled by user first: a user's rows come from different files, so Spark's map-side
    # partial aggregation (a sort of every row for first() on strings) would merge nothing.
    by_user = union.repartition(USER) if partitions is None else union.repartition(partitions, USER)
    grouped = by_user.groupBy(USER).agg(*aggregates, *counts)
    duplicates = F.array_compact(
        F.array(*[F.when(F.col(f"_n{i}") > 1, F.lit(item.table)) for i, item in enumerate(inputs)])
    )
    in_lake = reduce(lambda a, b: a | b, [F.col(f"_n{i}").isNotNull() for i in range(len(inputs))])
    return (
        grouped.withColumn(DUPLICATE, duplicates)
        .withColumn(IN_LAKE, in_lake)
        .drop(*[f"_n{i}" for i in range(len(inputs))])
    )


def _user_list_frame(spark: SparkSession, users: Sequence[str] | DataFrame) -> DataFrame:
    """The run's users themselves, so a listed user missing from the lake still gets merged."""
    from pyspark.sql import DataFrame as SparkFrame

    if isinstance(users, SparkFrame):
        return users.select(USER).distinct()
    return spark.createDataFrame([(u,) for u in sorted(set(users))], f"{USER} string")


def tag_array(tags: Sequence[TagPlan]) -> Column:
    """The sorted ids of the tags whose rule holds, as one array column (empty off the lake)."""
    from pyspark.sql import functions as F

    empty = F.array().cast("array<int>")
    if not tags:
        return empty
    ordered = sorted(tags, key=lambda t: t.tag_id)
    matches = [F.when(t.column, F.lit(t.tag_id)) for t in ordered]
    computed = F.array_compact(F.array(*matches)).cast("array<int>")
    return F.when(F.col(IN_LAKE), computed).otherwise(empty)


def unparsed_date_flags(columns: Sequence[LakeColumn]) -> list[Column]:
    """Per text column read as dates: 1 where the user's value is not a date (`_unparsed_i`)."""
    from tagsys.rules.compiler import unparsed_date

    return [
        unparsed_date(column).cast("long").alias(f"{UNPARSED}{index}")
        for index, column in enumerate(columns)
    ]


def with_existing(
    computed: DataFrame, existing: DataFrame, all_users: bool, partitions: int | None = None
) -> DataFrame:
    """Join each run user with its existing `user_tags` row (JSON text columns).

    Over all users, rows of users no longer in the lake take part too (their scope tags go).
    `partitions`: those of `computed`'s shuffle by user, so that the join adds none to it.
    """
    from pyspark.sql import functions as F

    how = "full_outer" if all_users else "left"
    marked = computed.withColumn(IN_RUN, F.lit(True))
    # A hash join on the stored rows: both sides arrive hashed by user id, and building a hash
    # table of one partition's stored rows is cheaper than sorting both sides (sort-merge).
    if partitions is not None:
        existing = existing.repartition(partitions, USER)
    joined = marked.join(existing.hint("shuffle_hash"), USER, how)
    return joined.withColumn(IN_RUN, F.coalesce(F.col(IN_RUN), F.lit(False)))


def merged(frame: DataFrame, scope: TagScope, definitions: dict[int, TagInfo]) -> DataFrame:
    """Add `new_ids` = (old - scope) ∪ computed, and `_candidate` = the row may change.

    The stored texts are dropped once decided on (`_has_row` keeps whether there was a row):
    the frame is persisted for several actions, and a narrower cache is cheaper to build."""
    from pyspark.sql import functions as F

    empty = F.array().cast("array<int>")
    computed = F.coalesce(F.col(COMPUTED), empty)
    parsed = F.coalesce(F.from_json(F.col(OLD_IDS_JSON), "array<int>"), empty)
    if scope.all_tags and not scope.failed:
        new_ids = computed  # every stored tag is in scope: nothing is kept (computed is sorted)
        # A row that does not change stores the text of the computed ids (compact, or spaced
        # as MySQL 8 returns JSON): only the other rows' texts need parsing.
        stored = F.col(OLD_IDS_JSON)
        same = (stored == _ids_text(computed)) | (stored == _ids_text(computed, ", "))
        old_ids = F.when(same, computed).otherwise(parsed)
    else:
        old_ids = parsed
        kept = F.filter(F.col(OLD_IDS), lambda t: ~_covers(t, scope))
        new_ids = F.array_sort(F.array_union(kept, computed))
    changed = ~(F.col(NEW_IDS) == F.col(OLD_IDS))
    has_row = F.col(OLD_IDS_JSON).isNotNull()
    stale = DetailFragments(definitions).stale(F.col(NEW_IDS), F.col(OLD_DETAILS_DIGEST))
    return (
        frame.withColumn(COMPUTED, computed)
        .withColumn(OLD_IDS, old_ids)
        .withColumn(NEW_IDS, new_ids)
        .withColumn(CANDIDATE, F.when(changed, F.lit(True)).when(has_row, stale).otherwise(False))
        .withColumn(HAS_ROW, has_row)
        .drop(OLD_IDS_JSON, OLD_DETAILS_DIGEST)
    )


def with_new_rows(candidates: DataFrame, definitions: dict[int, TagInfo]) -> DataFrame:
    """Prepare, as text, the row of each candidate without one (`new_tag_ids`,
    `new_tag_details`; null for the others): all its tags are computed, so each detail is
    the tag's definition."""
    from pyspark.sql import functions as F

    new_row = ~F.col(HAS_ROW)
    ids_text = _ids_text(F.col(NEW_IDS))
    details_text = DetailFragments(definitions).text(F.col(NEW_IDS), compact=True)
    return candidates.withColumn(NEW_IDS_JSON, F.when(new_row, ids_text)).withColumn(
        NEW_DETAILS_JSON, F.when(new_row, details_text)
    )


def _ids_text(ids: Column, separator: str = ",") -> Column:
    """`tag_ids` text as the writer writes it (`tagsets.ids_json` of sorted ids), or with
    another separator."""
    from pyspark.sql import functions as F

    return F.concat(F.lit("["), F.array_join(ids, separator), F.lit("]"))


def _covers(tag: Column, scope: TagScope) -> Column:
    from pyspark.sql import functions as F

    if scope.all_tags:
        return ~tag.isin(sorted(scope.failed)) if scope.failed else F.lit(True)
    owned = sorted(t for t in scope.tag_ids if scope.covers(t))
    return tag.isin(owned) if owned else F.lit(False)


class DetailFragments:
    """`tag_details` text built in Spark from each tag's `"id":{...}` entry, as the writer
    writes it (compact) and as MySQL 8 hands JSON back (spaced); see `merge.details_json`."""

    def __init__(self, definitions: dict[int, TagInfo]) -> None:
        def entries(separators: tuple[str, str]) -> dict[int, str]:
            return {
                tag_id: json.dumps(
                    {str(tag_id): info.as_detail()}, ensure_ascii=False, separators=separators
                )[1:-1]
                for tag_id, info in sorted(definitions.items())
            }

        self.compact = entries((",", ":"))
        self.spaced = entries((", ", ": "))

    def text(self, ids: Column, compact: bool) -> Column:
        """The details of `ids` when each is its current definition (null for an unknown id)."""
        from pyspark.sql import functions as F

        entries = self.compact if compact else self.spaced
        if not entries:
            return F.when(F.size(ids) == 0, F.lit("{}"))
        parts = F.transform(ids, _lookup(entries))
        joiner = "," if compact else ", "
        whole = F.concat(F.lit("{"), F.array_join(parts, joiner), F.lit("}"))
        return F.when(F.size(F.array_compact(parts)) == F.size(ids), whole)

    def stale(self, ids: Column, stored_digest: Column) -> Column:
        """True unless the stored details are exactly the current definitions of `ids`.

        A row whose kept (out-of-scope) tag has an older detail also tests true: that only
        costs the writer a locked look, which finds nothing to change.
        """
        from pyspark.sql import functions as F

        stored = F.coalesce(stored_digest, F.lit(""))
        matches = [
            F.coalesce(F.sha1(self.text(ids, compact)) == stored, F.lit(False))
            for compact in (True, False)
        ]
        return ~(matches[0] | matches[1])


def _lookup(entries: dict[int, str]) -> Callable[[Column], Column]:
    """id -> entry (null for an unknown id): an array index when the ids are dense enough, as
    they usually are (a literal map is searched key by key, for every tag of every user)."""
    from pyspark.sql import functions as F

    low, high = min(entries), max(entries)
    if high - low > 4 * len(entries) + 16:
        table = F.create_map(*[F.lit(v) for item in sorted(entries.items()) for v in item])
        return lambda t: F.try_element_at(table, t)
    dense = F.array(*[F.lit(entries.get(i)).cast("string") for i in range(low, high + 1)])
    return lambda t: F.get(dense, t - low)


def stats_row(frame: DataFrame, unparsed_columns: int = 0) -> dict[str, int]:
    """Run-wide counts in one aggregation over the merged frame: users evaluated, users
    duplicated in the lake, existing rows, candidate rows (that may change), revised rows
    (`_revised`), and `_unparsed_i` (values of the i-th text date column that are not dates)."""
    from pyspark.sql import functions as F

    unparsed = [F.sum(f"{UNPARSED}{i}").alias(f"{UNPARSED}{i}") for i in range(unparsed_columns)]
    has_row = F.col(HAS_ROW)
    row = frame.agg(
        F.sum(F.col(IN_RUN).cast("long")).alias("users_evaluated"),
        F.sum((F.size(DUPLICATE) > 0).cast("long")).alias("duplicates"),
        F.sum(has_row.cast("long")).alias("existing_rows"),
        F.sum(F.col(CANDIDATE).cast("long")).alias("candidates"),
        F.sum(_revised().cast("long")).alias("revised"),
        *unparsed,
    ).first()
    return {k: int(v or 0) for k, v in row.asDict().items()} if row else {}


MATCHED, ADDED, REMOVED = 0, 1, 2
_FIRST = 3
"""A tag of a user with no stored tags: matched and added at once (one event, not two)."""


def _revised() -> Column:
    """The user had tags, and its set changes."""
    from pyspark.sql import functions as F

    return (F.size(OLD_IDS) > 0) & ~(F.col(NEW_IDS) == F.col(OLD_IDS))


def per_tag_counts(frame: DataFrame, revised: bool = True) -> dict[tuple[int, int], int]:
    """(tag id, MATCHED/ADDED/REMOVED) -> users, from one explode + group by.

    Added and removed tags are exploded only for users with stored tags whose set changes
    (`revised`: whether there are any, see `stats_row`).
    """
    from pyspark.sql import functions as F

    kind = F.when(F.size(OLD_IDS) > 0, F.lit(MATCHED)).otherwise(F.lit(_FIRST))
    events = frame.select(F.explode(COMPUTED).alias("tag"), kind.alias("kind"))
    if revised:
        changed = frame.where(_revised())
        for code, tags in (
            (ADDED, F.array_except(NEW_IDS, OLD_IDS)),
            (REMOVED, F.array_except(OLD_IDS, NEW_IDS)),
        ):
            events = events.unionByName(
                changed.select(F.explode(tags).alias("tag"), F.lit(code).alias("kind"))
            )
    counts: dict[tuple[int, int], int] = {}
    for row in events.groupBy("tag", "kind").count().collect():
        for code in (MATCHED, ADDED) if row["kind"] == _FIRST else (row["kind"],):
            key = (int(row["tag"]), int(code))
            counts[key] = counts.get(key, 0) + int(row["count"])
    return counts


def duplicate_examples(frame: DataFrame, limit: int = 5) -> dict[str, list[str]]:
    from pyspark.sql import functions as F

    rows = frame.where(F.size(DUPLICATE) > 0).select(USER, DUPLICATE).limit(limit * 4).collect()
    found: dict[str, list[str]] = {}
    for row in rows:
        for table in row[DUPLICATE]:
            if len(found.setdefault(table, [])) < limit:
                found[table].append(row[USER])
    return found
