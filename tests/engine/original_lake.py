"""A lake shaped like the original system's Spark generator writes it, and the expected tags of
its eight rules computed independently (plain Python over the Parquet files, from SPEC 3/5).

Layout: `<root>/warehouse/<table>/part-*.snappy.parquet` with `_SUCCESS` and `.crc` files, as
Spark writes them. Types as the generator makes them: `age` and `risk_score` 64-bit integers,
money as doubles, dates and `created_time` as text, `computed_date` text in two tables.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

AS_OF = date(2025, 1, 15)
NOT_DATES = ("", "unknown", "2024-02-30", "15/01/2025")
"""Values the original generator never wrote, but real Hive tables hold: not dates."""

SCHEMAS = {
    "user_basic_info": "user_id string, age bigint, user_level string, kyc_status string, "
    "registration_date string, risk_score bigint, created_time string",
    "user_asset_summary": "user_id string, total_asset_value double, cash_balance double, "
    "computed_date string",
    "user_activity_summary": "user_id string, trade_count_30d bigint, last_login_date string, "
    "computed_date string",
}


def _day(rng: random.Random, back: int) -> str:
    return (AS_OF - timedelta(days=rng.randint(0, back))).isoformat()


def _rows(users: int, seed: int) -> dict[str, list[tuple[Any, ...]]]:
    rng = random.Random(seed)
    stamp = f"{AS_OF} 02:00:00"
    basic, assets, activity = [], [], []
    for n in range(1, users + 1):
        uid = f"user_{n:06d}"
        registered = _day(rng, 365)
        if n % 97 == 0:
            registered = NOT_DATES[n % len(NOT_DATES)]
        if n % 89 == 0:
            registered = f"{_day(rng, 40)} 09:15:00"  # a datetime: its date counts
        basic.append(
            (
                uid,
                None if n % 101 == 0 else rng.randint(16, 70),
                rng.choice(["VIP1", "VIP2", "VIP3", "VIP4", "VIP5"]),
                rng.choice(["verified", "pending", "rejected"]),
                registered,
                rng.randint(0, 100),
                stamp,
            )
        )
        if n % 10 != 3:  # some users have no asset row
            assets.append(
                (
                    uid,
                    round(rng.uniform(0, 300_000), 2),
                    round(rng.uniform(0, 100_000), 2),
                    str(AS_OF),
                )
            )
        login = None if n % 53 == 0 else _day(rng, 30)
        activity.append((uid, rng.randint(0, 30), login, str(AS_OF)))
    return {
        "user_basic_info": basic,
        "user_asset_summary": assets,
        "user_activity_summary": activity,
    }


def write_original_lake(spark: SparkSession, root: Path, users: int = 1000, seed: int = 7) -> Path:
    """Write the three tables with Spark; returns the lake root (`.../warehouse`)."""
    warehouse = root / "warehouse"
    for table, rows in _rows(users, seed).items():
        frame = spark.createDataFrame(rows, SCHEMAS[table])
        frame.coalesce(2).write.mode("overwrite").parquet(str(warehouse / table))
    return warehouse


def _date_of(text: str | None) -> date | None:
    """SPEC 3: YYYY-MM-DD, optionally with a time; anything else is not a date."""
    if not text or len(text) < 10 or (len(text) > 10 and text[10] not in " T"):
        return None
    try:
        day = date.fromisoformat(text[:10])
        if len(text) > 10:
            datetime.strptime(text[11:19], "%H:%M:%S")
        return day
    except ValueError:
        return None


def _within(text: str | None, days: int) -> bool:
    day = _date_of(text)
    return day is not None and AS_OF - timedelta(days=days) <= day <= AS_OF


def expected_tags(warehouse: Path) -> dict[str, set[int]]:
    """user id -> the original eight rules' tags, from the Parquet files alone."""
    users: dict[str, dict[str, Any]] = {}
    for table in SCHEMAS:
        for row in pq.read_table(warehouse / table).to_pylist():
            users.setdefault(row["user_id"], {}).update(row)
    tests = {
        1: lambda u: (u.get("total_asset_value") or -1) >= 100_000,
        2: lambda u: (u.get("trade_count_30d") or -1) > 10,
        3: lambda u: u.get("risk_score") is not None and u["risk_score"] <= 30,
        4: lambda u: _within(u.get("registration_date"), 30),
        5: lambda u: u.get("user_level") in ("VIP2", "VIP3") and u.get("kyc_status") == "verified",
        6: lambda u: (u.get("cash_balance") or -1) >= 50_000,
        7: lambda u: u.get("age") is not None and 18 <= u["age"] <= 30,
        8: lambda u: _within(u.get("last_login_date"), 7),
    }
    return {uid: {t for t, test in tests.items() if test(u)} for uid, u in users.items()}


def unparseable(warehouse: Path, column: str, table: str) -> int:
    values = pq.read_table(warehouse / table, columns=[column]).column(column).to_pylist()
    return sum(1 for v in values if v is not None and _date_of(v) is None)
