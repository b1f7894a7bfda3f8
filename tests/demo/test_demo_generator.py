"""The demo lake: determinism, counts, overlap, snapshots, and every seed tag splitting users."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tagsys.demo import generator
from tagsys.demo.generator import TABLES, generate_lake
from tagsys.demo.seed_tags import SEED_TAGS
from tagsys.errors import DataError
from tagsys.lake.catalog import LakeCatalog

AS_OF = date(2024, 6, 30)
USERS = 3000


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "lake"
    generate_lake(root, USERS, AS_OF, seed=7)
    return root


def _read(folder: Path) -> pd.DataFrame:
    return pq.read_table(folder).to_pandas()


def _users(root: Path) -> pd.DataFrame:
    """One row per user, columns of all three tables (missing table: nulls)."""
    frames = [_read(root / table) for table in TABLES]
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame, on="user_id", how="outer")
    return merged.set_index("user_id")


def _holds(condition: dict[str, Any], column: pd.Series) -> pd.Series:
    operator, value = condition["operator"], condition["value"]
    present = column.notna()
    if condition["type"] == "date":
        column = pd.to_datetime(column).dt.date
    elif condition["type"] == "number":
        column = column.astype("float64")
    if operator == ">=":
        return present & (column >= value)
    if operator == "<=":
        return present & (column <= value)
    if operator == "=":
        return present & (column == value)
    if operator == "in":
        return present & column.isin(value)
    if operator == "in_range":
        return present & column.between(value[0], value[1])
    if operator == "recent_days":
        window = column.where(present, AS_OF + timedelta(days=1))
        return present & (window >= AS_OF - timedelta(days=value)) & (window <= AS_OF)
    raise AssertionError(f"operator {operator} is not used by the seed tags")


def _matches(rule: dict[str, Any], users: pd.DataFrame) -> pd.Series:
    assert rule["logic"] == "AND"
    result = pd.Series(True, index=users.index)
    for condition in rule["conditions"]:
        result &= _holds(condition, users[condition["field"]])
    return result


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = generate_lake(tmp_path / "a", 500, AS_OF, seed=3)
    second = generate_lake(tmp_path / "b", 500, AS_OF, seed=3)
    other = generate_lake(tmp_path / "c", 500, AS_OF, seed=4)

    for table in TABLES:
        files = [sorted(p.rglob("*.parquet")) for p in (first[table], second[table])]
        assert [f.read_bytes() for f in files[0]] == [f.read_bytes() for f in files[1]]
        assert not _read(first[table]).equals(_read(other[table]))


def test_counts_and_overlap(demo_lake: Path) -> None:
    frames = {table: _read(demo_lake / table) for table in TABLES}
    ids = {table: set(frame["user_id"]) for table, frame in frames.items()}

    assert set().union(*ids.values()) == {f"user_{i:06d}" for i in range(1, USERS + 1)}
    for table, share in [
        ("user_basic_info", 0.98),
        ("user_asset_summary", 0.95),
        ("user_activity_summary", 0.90),
    ]:
        assert frames[table]["user_id"].is_unique
        assert abs(len(frames[table]) / USERS - share) < 0.02, table
    assert ids["user_asset_summary"] - ids["user_activity_summary"]
    assert ids["user_activity_summary"] - ids["user_basic_info"]


def test_values_have_the_seed_types_ranges_and_some_nulls(demo_lake: Path) -> None:
    users = _users(demo_lake)

    assert set(users["user_level"].dropna()) == {"NORMAL", "VIP1", "VIP2", "VIP3", "VIP4", "VIP5"}
    assert set(users["kyc_status"].dropna()) == {"verified", "pending", "rejected"}
    assert users["risk_score"].dropna().between(0, 100).all()
    assert users["registration_date"].dropna().max() <= AS_OF
    assert users["last_login_date"].dropna().max() <= AS_OF
    assert isinstance(users["total_asset_value"].dropna().iloc[0], Decimal)
    for column in ("age", "risk_score", "cash_balance", "trade_count_30d", "last_login_date"):
        assert users[column].isna().any(), column


@pytest.mark.parametrize("tag", SEED_TAGS, ids=lambda t: f"{t.tag_id}-{t.tag_name}")
def test_every_seed_tag_matches_some_users_and_not_others(demo_lake: Path, tag: Any) -> None:
    users = _users(demo_lake)

    matched = _matches(tag.rules[0], users)

    assert 0.01 < matched.mean() < 0.6
    assert matched["user_000001"]
    assert not matched["user_000002"]


@pytest.mark.parametrize("users", [1, 2])
def test_tiny_lakes_still_split_the_tags(tmp_path: Path, users: int) -> None:
    generate_lake(tmp_path, users, AS_OF)
    frame = _users(tmp_path)

    assert list(frame.index) == [f"user_{i:06d}" for i in range(1, users + 1)]
    assert all(_matches(tag.rules[0], frame).iloc[0] for tag in SEED_TAGS)


def test_chunks_continue_ids_and_stay_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "CHUNK_USERS", 70)
    generate_lake(tmp_path / "a", 250, AS_OF)
    generate_lake(tmp_path / "b", 250, AS_OF)

    first, second = _users(tmp_path / "a"), _users(tmp_path / "b")
    assert list(first.index) == [f"user_{i:06d}" for i in range(1, 251)]
    pd.testing.assert_frame_equal(first, second)


def test_daily_snapshots_change_a_few_users(tmp_path: Path) -> None:
    days = [AS_OF - timedelta(days=2), AS_OF - timedelta(days=1), AS_OF]
    folders = generate_lake(tmp_path, 2000, AS_OF, partition_dates=days)

    for table in TABLES:
        assert sorted(p.name for p in folders[table].iterdir()) == [
            f"dt={d.isoformat()}" for d in days
        ]
    activity = [
        _read(folders["user_activity_summary"] / f"dt={d}").set_index("user_id") for d in days
    ]
    changed = (activity[2].fillna(-1) != activity[0].fillna(-1)).any(axis=1)
    assert 10 < changed.sum() < 100
    assert (activity[2].loc[changed, "last_login_date"] >= days[1]).all()
    basic = [_read(folders["user_basic_info"] / f"dt={d}") for d in (days[0], days[2])]
    pd.testing.assert_frame_equal(basic[0], basic[1])


def test_lake_catalog_sees_every_seed_rule_field_with_its_kind(demo_lake: Path) -> None:
    schema = LakeCatalog(str(demo_lake)).schema()

    for tag in SEED_TAGS:
        for condition in tag.rules[0]["conditions"]:
            assert schema.resolve(condition["field"]).kind == condition["type"], condition


def test_no_users_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least 1 user"):
        generate_lake(tmp_path, 0, AS_OF)
