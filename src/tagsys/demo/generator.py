"""Deterministic demo lake: the seed's three user tables for any number of users.

Values are drawn with numpy from `seed`, chunk by chunk (so 1M+ users stay fast and memory
stays bounded), and written with pyarrow. Dates are relative to `as_of`, so every seed tag
(seed_tags.py) matches some users and not others on that date. User 1 of every lake matches
all eight tags and user 2 none of them.

With `partition_dates`, every table is written as daily snapshots (`dt=YYYY-MM-DD` folders):
the earliest date holds the base data, and on each later date about 1% of the users trade
(trade_count_30d up, last_login_date set to that day) and see their cash_balance move.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tagsys.errors import DataError

CHUNK_USERS = 200_000
CHANGE_RATE = 0.01
SHARE_IN_BASIC = 0.98
SHARE_IN_ASSETS = 0.95
SHARE_IN_ACTIVITY = 0.90
USER_LEVELS = ("NORMAL", "VIP1", "VIP2", "VIP3", "VIP4", "VIP5")
USER_LEVEL_WEIGHTS = (0.50, 0.20, 0.12, 0.09, 0.06, 0.03)
KYC_STATUSES = ("verified", "pending", "rejected")
KYC_WEIGHTS = (0.80, 0.15, 0.05)
EPOCH = date(1970, 1, 1)

SCHEMAS: dict[str, pa.Schema] = {
    "user_basic_info": pa.schema(
        [
            ("user_id", pa.string()),
            ("age", pa.int32()),
            ("user_level", pa.string()),
            ("kyc_status", pa.string()),
            ("registration_date", pa.date32()),
            ("risk_score", pa.float64()),
        ]
    ),
    "user_asset_summary": pa.schema(
        [
            ("user_id", pa.string()),
            ("total_asset_value", pa.decimal128(18, 2)),
            ("cash_balance", pa.float64()),
        ]
    ),
    "user_activity_summary": pa.schema(
        [
            ("user_id", pa.string()),
            ("trade_count_30d", pa.int32()),
            ("last_login_date", pa.date32()),
        ]
    ),
}
TABLES = tuple(SCHEMAS)


@dataclass
class _Chunk:
    """Column values of one chunk of users as numpy arrays; NaN / -1 / masks mark nulls."""

    start: int
    columns: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray]
    members: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return len(self.columns["age"])


def generate_lake(
    root: str | Path,
    users: int,
    as_of: date,
    seed: int = 42,
    partition_dates: Sequence[date] | None = None,
) -> dict[str, Path]:
    """Write the demo tables under `root`; return each table's folder."""
    if users < 1:
        raise DataError(f"the demo lake needs at least 1 user, got {users}")
    days: list[date | None] = [*sorted(set(partition_dates or ()))] or [None]
    folders = {table: Path(root) / table for table in TABLES}
    with ExitStack() as stack:
        writers = {
            (table, day): stack.enter_context(pq.ParquetWriter(_file(folder, day), SCHEMAS[table]))
            for table, folder in folders.items()
            for day in days
        }
        for chunk in _chunks(users, as_of, seed):
            for index, day in enumerate(days):
                if day is not None and index > 0:
                    _apply_changes(chunk, seed, index, day)
                for table in TABLES:
                    writers[(table, day)].write_table(_arrow_table(chunk, table))
    return folders


def _file(folder: Path, day: date | None) -> Path:
    target = folder / f"dt={day.isoformat()}" if day else folder
    target.mkdir(parents=True, exist_ok=True)
    return target / "part-00000.parquet"


def _chunks(users: int, as_of: date, seed: int) -> Iterator[_Chunk]:
    for number, start in enumerate(range(0, users, CHUNK_USERS)):
        rng = np.random.default_rng([seed, number])
        chunk = _draw(rng, start, min(CHUNK_USERS, users - start), _days(as_of))
        if start == 0:
            _plant_archetypes(chunk, _days(as_of))
        yield chunk


def _days(day: date) -> int:
    return (day - EPOCH).days


def _draw(rng: np.random.Generator, start: int, n: int, as_of: int) -> _Chunk:
    in_assets = rng.random(n) < SHARE_IN_ASSETS
    in_activity = rng.random(n) < SHARE_IN_ACTIVITY
    in_basic = (rng.random(n) < SHARE_IN_BASIC) | ~(in_assets | in_activity)
    recent = rng.random(n) < 0.05
    registered_ago = np.where(recent, rng.integers(0, 60, n), rng.integers(60, 3650, n))
    total = np.round(rng.lognormal(10.0, 1.5, n), 2)
    columns: dict[str, np.ndarray] = {
        "age": rng.integers(16, 80, n).astype(np.int32),
        "user_level": rng.choice(len(USER_LEVELS), n, p=USER_LEVEL_WEIGHTS),
        "kyc_status": rng.choice(len(KYC_STATUSES), n, p=KYC_WEIGHTS),
        "registration_date": (as_of - registered_ago).astype(np.int32),
        "risk_score": np.round(rng.uniform(0, 100, n), 1),
        "total_asset_value": total,
        "cash_balance": np.round(total * rng.beta(2.0, 5.0, n), 2),
        "trade_count_30d": rng.poisson(rng.gamma(0.8, 6.0, n)).astype(np.int32),
        "last_login_date": (as_of - np.minimum(rng.geometric(0.05, n) - 1, 1000)).astype(np.int32),
    }
    null_shares = {"age": 0.02, "user_level": 0.01, "kyc_status": 0.01, "risk_score": 0.01}
    null_shares |= {"cash_balance": 0.02, "trade_count_30d": 0.01, "last_login_date": 0.03}
    nulls = {name: rng.random(n) < share for name, share in null_shares.items()}
    members = {
        "user_basic_info": in_basic,
        "user_asset_summary": in_assets,
        "user_activity_summary": in_activity,
    }
    return _Chunk(start, columns, nulls, members)


# Row 0 matches every seed tag, row 1 none; both are in every table with no nulls.
_ARCHETYPES: dict[str, tuple[float, float]] = {
    "age": (25, 50),
    "user_level": (USER_LEVELS.index("VIP5"), USER_LEVELS.index("NORMAL")),
    "kyc_status": (KYC_STATUSES.index("verified"), KYC_STATUSES.index("pending")),
    "registration_date": (-3, -2000),
    "risk_score": (10.0, 80.0),
    "total_asset_value": (500000.0, 5000.0),
    "cash_balance": (120000.0, 1000.0),
    "trade_count_30d": (25, 0),
    "last_login_date": (0, -60),
}
_RELATIVE_TO_AS_OF = ("registration_date", "last_login_date")


def _plant_archetypes(chunk: _Chunk, as_of: int) -> None:
    for row in range(min(2, chunk.size)):
        for name, values in _ARCHETYPES.items():
            offset = as_of if name in _RELATIVE_TO_AS_OF else 0
            chunk.columns[name][row] = values[row] + offset
        for mask in chunk.nulls.values():
            mask[row] = False
        for mask in chunk.members.values():
            mask[row] = True


def _apply_changes(chunk: _Chunk, seed: int, index: int, day: date) -> None:
    """The changes of partition number `index` (>= 1), on top of the previous partition."""
    rng = np.random.default_rng([seed, chunk.start // CHUNK_USERS, index])
    changed = rng.random(chunk.size) < CHANGE_RATE
    if chunk.start == 0:
        changed[:2] = False
    count = int(changed.sum())
    columns = chunk.columns
    columns["trade_count_30d"][changed] += rng.integers(1, 5, count).astype(np.int32)
    columns["last_login_date"][changed] = _days(day)
    columns["cash_balance"][changed] = np.round(
        columns["cash_balance"][changed] * rng.uniform(0.5, 1.5, count), 2
    )
    chunk.nulls["trade_count_30d"][changed] = False
    chunk.nulls["last_login_date"][changed] = False


def _arrow_table(chunk: _Chunk, table: str) -> pa.Table:
    rows = chunk.members[table]
    arrays: dict[str, pa.Array] = {"user_id": _user_ids(chunk.start, chunk.size).filter(rows)}
    for arrow_field in SCHEMAS[table]:
        if arrow_field.name != "user_id":
            arrays[arrow_field.name] = _column(chunk, arrow_field, rows)
    return pa.table(arrays, schema=SCHEMAS[table])


def _user_ids(start: int, size: int) -> pa.Array:
    numbers = pa.array(np.arange(start + 1, start + size + 1)).cast(pa.string())
    return pc.binary_join_element_wise("user_", pc.utf8_lpad(numbers, 6, "0"), "")


def _column(chunk: _Chunk, arrow_field: pa.Field, rows: np.ndarray) -> pa.Array:
    values = chunk.columns[arrow_field.name][rows]
    mask = chunk.nulls.get(arrow_field.name, np.zeros(len(rows), dtype=bool))[rows]
    choices: Mapping[str, Sequence[str]] = {"user_level": USER_LEVELS, "kyc_status": KYC_STATUSES}
    if arrow_field.name in choices:
        indices = pa.array(values, type=pa.int32(), mask=mask)
        return pa.array(choices[arrow_field.name]).take(indices)
    if pa.types.is_date32(arrow_field.type):
        return pa.array(values, type=pa.int32(), mask=mask).cast(pa.date32())
    if pa.types.is_decimal(arrow_field.type):
        return pa.array(values, type=pa.float64(), mask=mask).cast(arrow_field.type)
    return pa.array(values, type=arrow_field.type, mask=mask)
