"""The insert path for users without a row: no locking reads, and safe when a row appears."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tagsys.engine.merge import TagInfo, TagScope
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tagsys.store.writer import WriteCounts, WriteRequest, write_new_rows, write_rows

DEFS = {1: TagInfo("one", "c"), 2: TagInfo("two", "c"), 3: TagInfo("three", "c")}


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def url(request: pytest.FixtureRequest) -> str:
    db_url = request.getfixturevalue(f"{request.param}_url")
    upgrade(db_url)
    return db_url


def request_for(url: str, scope: TagScope) -> WriteRequest:
    return WriteRequest(url, scope, DEFS, datetime.now(UTC), batch_size=3)


def stored(url: str) -> dict[str, list[int]]:
    engine = create_store_engine(url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


def test_new_rows_are_inserted_and_empty_ones_skipped(url: str) -> None:
    rows = [("a", [1]), ("b", []), ("c", [2, 1]), ("d", [3])]
    counts = write_new_rows(request_for(url, TagScope(all_tags=True)), rows)
    assert counts == WriteCounts(inserted=3, updated=0, unchanged=1)
    assert stored(url) == {"a": [1], "c": [1, 2], "d": [3]}


def test_a_row_that_exists_after_all_is_merged_not_overwritten(url: str) -> None:
    write_rows(request_for(url, TagScope(frozenset({3}))), [("b", [3])])
    counts = write_new_rows(request_for(url, TagScope(frozenset({1, 2}))), [("a", [1]), ("b", [2])])
    assert stored(url) == {"a": [1], "b": [2, 3]}
    assert counts == WriteCounts(inserted=1, updated=1, unchanged=0)
