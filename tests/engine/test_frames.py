"""The Spark-side text of tag_details: what new rows get, and when a stored row is stale."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import pytest

from tagsys.engine.frames import DetailFragments
from tagsys.tagsets import TagInfo, details_json

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TRICKY = {
    1: TagInfo('say "hi", \\ bye', "财富"),
    2: TagInfo("VIP客户", "价值"),
    10: TagInfo("tab\there\nnewline", "c"),
}


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _spaced(ids: list[int]) -> str:
    """How MySQL 8 hands a JSON object back: ', ' and ': ' separators."""
    return json.dumps({str(t): TRICKY[t].as_detail() for t in ids}, ensure_ascii=False)


@pytest.mark.parametrize("far_id", [None, 5000], ids=["dense ids", "sparse ids"])
def test_prepared_details_text_is_exactly_what_the_writer_writes(
    spark: SparkSession, far_id: int | None
) -> None:
    from pyspark.sql import functions as F

    definitions = TRICKY if far_id is None else {**TRICKY, far_id: TagInfo("far", "c")}
    fragments = DetailFragments(definitions)
    known = [[1, 2, 10], [10], [], sorted(definitions)]
    unknown = [[2, 99], [0], [-3], [1, 20000]]
    frame = spark.createDataFrame([(c,) for c in known + unknown], "ids array<int>")
    got = [r[0] for r in frame.select(fragments.text(F.col("ids"), compact=True)).collect()]

    expected = [details_json({t: definitions[t].as_detail() for t in c}) for c in known]
    assert got == [*expected, None, None, None, None]  # an unknown id: no text at all


def test_a_row_is_stale_unless_its_details_are_the_current_definitions(
    spark: SparkSession,
) -> None:
    from pyspark.sql import functions as F

    ids = [1, 2, 10]
    current = details_json({t: TRICKY[t].as_detail() for t in ids})
    renamed = current.replace("VIP客户", "VIP")
    rows = [
        ("writer's own text", ids, _sha1(current)),
        ("MySQL 8's text", ids, _sha1(_spaced(ids))),
        ("renamed tag", ids, _sha1(renamed)),
        ("null details", ids, None),
        ("empty row", [], _sha1("{}")),
    ]
    frame = spark.createDataFrame(rows, "case string, ids array<int>, digest string")
    stale = DetailFragments(TRICKY).stale(F.col("ids"), F.col("digest"))

    got = {r["case"]: r["stale"] for r in frame.select("case", stale.alias("stale")).collect()}
    assert got == {
        "writer's own text": False,
        "MySQL 8's text": False,
        "renamed tag": True,
        "null details": True,
        "empty row": False,
    }


def test_per_tag_counts_match_a_plain_python_count(spark: SparkSession) -> None:
    from tagsys.engine import frames

    rows = [  # computed, old ids, new ids
        ([1, 2], [], [1, 2]),  # no stored tags: matched and added
        ([1], [1, 3], [1]),  # 3 removed
        ([2], [1], [1, 2]),  # 1 kept (outside the scope), 2 added
        ([1, 2], [1, 2], [1, 2]),  # unchanged
        ([], [2], []),  # 2 removed
    ]
    frame = spark.createDataFrame(
        rows,
        f"{frames.COMPUTED} array<int>, {frames.OLD_IDS} array<int>, {frames.NEW_IDS} array<int>",
    )
    expected: dict[tuple[int, int], int] = {}
    for computed, old, new in rows:
        for kind, tags in (
            (frames.MATCHED, computed),
            (frames.ADDED, set(new) - set(old)),
            (frames.REMOVED, set(old) - set(new)),
        ):
            for tag in tags:
                expected[(tag, kind)] = expected.get((tag, kind), 0) + 1

    assert frames.per_tag_counts(frame) == expected


def test_per_tag_counts_match_python_on_random_sets(spark: SparkSession) -> None:
    """Any ids a stored row may hold (negative, 0, the 32-bit extremes) decode exactly."""
    import random

    from tagsys.engine import frames

    pool = [-(2**31), -7, 0, 1, 2, 3, 50, 2**31 - 1]
    rng = random.Random(15)
    rows = []
    for _ in range(300):
        computed = sorted(rng.sample(pool, rng.randint(0, 4)))
        old = sorted(rng.sample(pool, rng.randint(0, 4)))
        kept = [t for t in old if t < 0]  # outside this run's scope
        rows.append((computed, old, sorted(set(computed) | set(kept))))
    frame = spark.createDataFrame(
        rows,
        f"{frames.COMPUTED} array<int>, {frames.OLD_IDS} array<int>, {frames.NEW_IDS} array<int>",
    )
    expected: dict[tuple[int, int], int] = {}
    for computed, old, new in rows:
        changed = bool(old) and new != old
        for kind, tags in (
            (frames.MATCHED, computed),
            (frames.ADDED, set(new) - set(old) if changed else set(new) if not old else ()),
            (frames.REMOVED, set(old) - set(new) if changed else ()),
        ):
            for tag in tags:
                expected[(tag, kind)] = expected.get((tag, kind), 0) + 1

    assert frames.per_tag_counts(frame) == expected


def test_revised_rows_are_counted_and_without_them_no_change_is_exploded(
    spark: SparkSession,
) -> None:
    from pyspark.sql import functions as F

    from tagsys.engine import frames

    rows = [  # computed, old ids, new ids
        ([1, 2], [], [1, 2]),  # first tags: not revised
        ([1], [1, 3], [1]),
        ([2], [1], [1, 2]),
        ([1, 2], [1, 2], [1, 2]),  # unchanged
        ([], [2], []),
    ]
    schema = (
        f"{frames.COMPUTED} array<int>, {frames.OLD_IDS} array<int>, {frames.NEW_IDS} array<int>"
    )
    frame = (
        spark.createDataFrame(rows, schema)
        .withColumn(frames.IN_RUN, F.lit(True))
        .withColumn(frames.DUPLICATE, F.array().cast("array<string>"))
        .withColumn(frames.HAS_ROW, F.size(frames.OLD_IDS) > 0)
        .withColumn(frames.CANDIDATE, F.lit(False))
    )
    assert frames.stats_row(frame)["revised"] == 3
    calm = spark.createDataFrame([rows[0], rows[3]], schema)
    assert (
        frames.per_tag_counts(calm, revised=False)
        == frames.per_tag_counts(calm)
        == {
            (1, frames.MATCHED): 2,
            (2, frames.MATCHED): 2,
            (1, frames.ADDED): 1,
            (2, frames.ADDED): 1,
        }
    )
