"""Experimental engine patches, applied in-process with `--engine-patch NAME` (never by default).

They exist to measure a proposed change to src/ before its owner applies it; the product's
files are not touched. Each patch names the function it replaces and why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from tagsys.engine.merge import TagInfo, TagScope

OLD_DETAILS_MAP = "_old_details_map"
DETAILS_TYPE = "map<string, struct<tag_name:string, tag_category:string>>"


def _merged_parse_once(
    frame: DataFrame, scope: TagScope, definitions: dict[int, TagInfo]
) -> DataFrame:
    """`frames.merged` with `tag_details` parsed once per row instead of once per computed tag.

    The product's `_stale_details` puts `from_json(tag_details)` inside the `exists` lambda,
    so the JSON is parsed again for every element of `computed`. Here it is a column of its
    own, materialised by a projection that is referenced twice so it is not collapsed back
    into the lambda.
    """
    from pyspark.sql import functions as F

    from tagsys.engine import frames

    computed = F.coalesce(F.col(frames.COMPUTED), F.array().cast("array<int>"))
    kept = F.filter(F.col(frames.OLD_IDS), lambda t: ~frames._covers(t, scope))
    new_ids = F.array_sort(F.array_union(kept, computed))
    changed = ~(F.col(frames.NEW_IDS) == F.col(frames.OLD_IDS))
    parsed = frame.withColumn(
        OLD_DETAILS_MAP, F.from_json(F.col(frames.OLD_DETAILS_JSON), DETAILS_TYPE)
    )
    stale = F.col(OLD_DETAILS_MAP).isNotNull() & _stale(computed, definitions)
    return (
        parsed.withColumn(frames.COMPUTED, computed)
        .withColumn(frames.NEW_IDS, new_ids)
        .withColumn(frames.CANDIDATE, changed | stale)
        .drop(OLD_DETAILS_MAP)
    )


def _stale(computed: Column, definitions: dict[int, TagInfo]) -> Column:
    from pyspark.sql import functions as F

    from tagsys.engine import frames

    if not definitions:
        return F.lit(False)
    entries: list[Column] = []
    for tag_id in sorted(definitions):
        info = definitions[tag_id]
        entries += [
            F.lit(tag_id),
            F.struct(
                F.lit(info.tag_name).alias("tag_name"),
                F.lit(info.tag_category).alias("tag_category"),
            ),
        ]
    current = F.create_map(*entries)
    old = F.col(OLD_DETAILS_MAP)
    return F.exists(
        computed,
        lambda t: (
            F.array_contains(F.col(frames.OLD_IDS), t)
            & ~F.element_at(old, t.cast("string")).eqNullSafe(F.element_at(current, t))
        ),
    )


def _apply_parse_once() -> None:
    from tagsys.engine import frames

    frames.merged = _merged_parse_once  # type: ignore[assignment]


PATCHES: dict[str, Callable[[], None]] = {"details_parse_once": _apply_parse_once}


def apply(names: tuple[str, ...]) -> None:
    for name in names:
        if name not in PATCHES:
            raise ValueError(f"unknown engine patch {name!r}; known: {', '.join(PATCHES)}")
        PATCHES[name]()
