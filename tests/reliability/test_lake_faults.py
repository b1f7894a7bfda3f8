"""A lake file that vanishes or breaks after planning: a LakeError naming the file, nothing
written, the run recorded failed; once the file is back, the run converges."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsys.engine.io import _product_error
from tagsys.errors import LakeError, SparkFailure, StoreError
from tagsys.lake import reader
from tagsys.store import repository, runs
from tagsys.store.db import create_store_engine
from tests.engine.lakes import AS_OF, SHOP_TAGS, load_tags


def _stored(db_url: str) -> dict[str, list[int]]:
    engine = create_store_engine(db_url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_lake_file_damaged_after_planning_fails_the_run_naming_it(
    make_api, sqlite_url: str, shop_lake: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    load_tags(sqlite_url, SHOP_TAGS)
    victim = shop_lake / "customers" / "part-0.parquet"
    original = victim.read_bytes()
    open_snapshot = reader.open_snapshot

    def open_then_damage(spark, snapshot):  # type: ignore[no-untyped-def]
        frame = open_snapshot(spark, snapshot)  # planned: the schema is known
        if snapshot.table == "customers":
            if damage == "delete":
                victim.unlink()
            else:
                victim.write_bytes(original[: len(original) // 2])
        return frame

    monkeypatch.setattr(reader, "open_snapshot", open_then_damage)
    api = make_api(sqlite_url, shop_lake)

    with pytest.raises(LakeError, match=f"lake file {victim}") as caught:
        api.run(api.request("task-all", as_of=AS_OF))

    assert ("no longer exists" if damage == "delete" else "cannot be read") in str(caught.value)
    assert _stored(sqlite_url) == {}
    engine = create_store_engine(sqlite_url)
    [record] = runs.list_runs(bind=engine)
    engine.dispose()
    assert record.status == "failed" and str(victim) in (record.error or "")

    monkeypatch.setattr(reader, "open_snapshot", open_snapshot)
    victim.write_bytes(original)
    assert api.run(api.request("task-all", as_of=AS_OF)).succeeded
    assert len(_stored(sqlite_url)) > 10


def test_spark_errors_become_product_errors() -> None:
    task = "pyspark.errors.PythonException: ... tagsys.errors.StoreError: cannot connect to the mysql store"
    assert isinstance(_product_error(task), StoreError)
    other = _product_error(
        "An error occurred while calling o43.count.\n: java.lang.OutOfMemoryError: Java heap space\n\tat x"
    )
    assert isinstance(other, SparkFailure)
    assert "java.lang.OutOfMemoryError: Java heap space" in str(other)
