"""Small, unfamiliar lakes for engine tests; expectations come from `tests.oracle`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tests.oracle import computed_tags, merged

AS_OF = date(2024, 6, 30)


def write_table(
    root: Path,
    name: str,
    rows: list[dict[str, Any]],
    schema: pa.Schema,
    partition: str | None = None,
) -> None:
    folder = root / name / partition if partition else root / name
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, folder / "part-0.parquet")


CUSTOMERS = pa.schema(
    [
        ("user_id", pa.string()),
        ("age", pa.int32()),
        ("city", pa.string()),
        ("vip", pa.bool_()),
        ("joined", pa.date32()),
    ]
)
ORDERS = pa.schema(
    [
        ("user_id", pa.string()),
        ("amount", pa.float64()),
        ("last_order", pa.date32()),
        ("channel", pa.string()),
    ]
)


def build_shop_lake(root: Path, users: int = 60) -> None:
    """`customers` (unpartitioned) and `orders` (dt partitions; the run reads the latest
    on or before AS_OF). Some users are only in one table; some values are null."""
    customers, old_orders, orders = [], [], []
    cities = ["上海", "Beijing", "50%_off", None, "O'Hare"]
    for i in range(users):
        uid = f"u{i:04d}"
        if i % 7 != 3:
            customers.append(
                {
                    "user_id": uid,
                    "age": None if i % 11 == 0 else 16 + (i * 7) % 60,
                    "city": cities[i % 5],
                    "vip": None if i % 13 == 0 else i % 3 == 0,
                    "joined": AS_OF - timedelta(days=(i * 17) % 400),
                }
            )
        if i % 5 != 1:
            orders.append(
                {
                    "user_id": uid,
                    "amount": None if i % 9 == 0 else float((i * 379) % 5000),
                    "last_order": None if i % 10 == 0 else AS_OF - timedelta(days=i % 45),
                    "channel": ["app", "web", "store"][i % 3],
                }
            )
            old_orders.append({**orders[-1], "amount": 1.0e9})
    write_table(root, "customers", customers, CUSTOMERS)
    write_table(root, "orders", old_orders, ORDERS, "dt=2024-05-31")
    write_table(root, "orders", orders, ORDERS, "dt=2024-06-29")
    write_table(root, "orders", old_orders, ORDERS, "dt=2024-07-31")


SHOP_TAGS: dict[int, tuple[str, str, list[dict[str, Any]]]] = {
    101: (
        "big spender",
        "value",
        [
            {
                "logic": "AND",
                "conditions": [
                    {"field": "amount", "operator": ">=", "value": 2500, "type": "number"}
                ],
            }
        ],
    ),
    102: (
        "young city",
        "people",
        [
            {
                "logic": "AND",
                "conditions": [
                    {"field": "age", "operator": "in_range", "value": [18, 30]},
                    {
                        "logic": "OR",
                        "conditions": [
                            {"field": "city", "operator": "contains", "value": "%_"},
                            {"field": "city", "operator": "in", "value": ["上海", "O'Hare"]},
                        ],
                    },
                ],
            }
        ],
    ),
    103: (
        "not vip",
        "people",
        [{"logic": "NOT", "conditions": [{"field": "vip", "operator": "=", "value": True}]}],
    ),
    104: (
        "recent buyer",
        "activity",
        [
            {
                "logic": "AND",
                "conditions": [{"field": "last_order", "operator": "recent_days", "value": 7}],
            },
            {
                "logic": "AND",
                "conditions": [
                    {"field": "orders.channel", "operator": "=", "value": "store"},
                    {"field": "joined", "operator": "days_ago", "value": 100},
                ],
            },
        ],
    ),
    105: (
        "no orders",
        "activity",
        [{"logic": "AND", "conditions": [{"field": "amount", "operator": "is_null"}]}],
    ),
}


ADULT: dict[int, tuple[str, str, list[dict[str, Any]]]] = {
    201: (
        "adult",
        "people",
        [{"logic": "AND", "conditions": [{"field": "age", "operator": ">=", "value": 18}]}],
    )
}


def load_tags(db_url: str, tags: Mapping[int, tuple[str, str, Sequence[Any]]]) -> None:
    upgrade(db_url)
    engine = create_store_engine(db_url)
    try:
        for tag_id, (name, category, rules) in tags.items():
            repository.upsert_tag(bind=engine, tag_id=tag_id, tag_name=name, tag_category=category)
            texts = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rules]
            repository.replace_rules(bind=engine, tag_id=tag_id, rules=texts)
    finally:
        engine.dispose()


def expected_tags(
    root: Path, tags: Mapping[int, tuple[str, str, Sequence[Any]]], as_of: date
) -> dict[str, set[int]]:
    """computed(u) per the SPEC, by `tests.oracle` (which shares no code with the product)."""
    return computed_tags(root, tags, as_of)


def expected_after(
    old: Mapping[str, list[int]],
    computed: Mapping[str, set[int]],
    scope: set[int],
    users: Sequence[str] | None = None,
) -> dict[str, list[int]]:
    """new(u) = (old(u) - S) ∪ computed(u) for the run's users; others unchanged."""
    everyone = set(old) | set(computed) if users is None else set(users)
    return merged(old, computed, scope, everyone)
