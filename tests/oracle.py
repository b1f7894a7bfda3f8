"""An independent expectation of a run's result, written from SPEC.md alone.

It imports nothing from `tagsys`: it reads the Parquet files with pyarrow, picks each
table's partition itself (`dt=` of as_of, or the latest one before it), interprets the JSON
rules directly (SPEC section 3) and merges with plain set operators (SPEC section 5). A
defect in the product's partition choice, rule compiler, reference evaluator or merge
therefore cannot hide in the expectation as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

Row = dict[str, dict[str, Any]]  # table -> column -> value
Tags = Mapping[int, tuple[str, str, Sequence[Any]]]


def chosen_partition(table_dir: Path, as_of: date) -> Path | None:
    """The `dt=` folder of as_of or the latest before it; the table folder when unpartitioned."""
    parts = sorted(
        (date.fromisoformat(p.name[3:]), p) for p in table_dir.iterdir() if p.name.startswith("dt=")
    )
    if not parts:
        return table_dir
    eligible = [p for d, p in parts if d <= as_of]
    return eligible[-1] if eligible else None


def read_lake(root: Path, as_of: date, user_id: str = "user_id") -> dict[str, Row]:
    """user id (as text) -> table -> column -> value, over the partitions a run reads."""
    users: dict[str, Row] = {}
    for table_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        folder = chosen_partition(table_dir, as_of)
        if folder is None:
            continue
        for path in sorted(folder.glob("*.parquet")):
            for record in pq.read_table(path).to_pylist():
                uid = record.pop(user_id)
                record.pop("dt", None)
                if uid is None:
                    continue  # a row without a user id belongs to no one
                users.setdefault(str(uid), {})[table_dir.name] = record
    return users


def columns(root: Path) -> dict[str, set[str]]:
    """table -> its column names (from any one Parquet file of the table)."""
    found: dict[str, set[str]] = {}
    for table_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        path = next(table_dir.rglob("*.parquet"))
        found[table_dir.name] = set(pq.read_schema(path).names) - {"dt"}
    return found


def _value(field: str, row: Row, tables: Mapping[str, set[str]]) -> Any:
    table, _, column = field.rpartition(".")
    if not table:
        owners = [t for t, cols in tables.items() if field in cols]
        assert len(owners) == 1, f"oracle: field {field} is ambiguous or unknown"
        table, column = owners[0], field
    return row.get(table, {}).get(column)


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _holds(cond: Mapping[str, Any], actual: Any, as_of: date) -> bool:
    op, v = cond["operator"], cond.get("value")
    if op == "is_null":
        return actual is None
    if op == "is_not_null":
        return actual is not None
    if actual is None:
        return False
    if isinstance(actual, date | datetime) or cond.get("type") == "date":
        actual = _day(actual)
        if op in ("=", "!=", ">", "<", ">=", "<=", "date_between", "in_range", "not_in_range"):
            v = [_day(x) for x in v] if isinstance(v, list) else _day(v)
        elif op in ("in", "not_in"):
            v = [_day(x) for x in v]
    if op == "recent_days":
        return as_of - timedelta(days=v) <= actual <= as_of
    if op == "days_ago":
        return actual <= as_of - timedelta(days=v)
    if op == "days_ago_between":
        return as_of - timedelta(days=v[1]) <= actual <= as_of - timedelta(days=v[0])
    simple = {
        "=": lambda: actual == v,
        "!=": lambda: actual != v,
        ">": lambda: actual > v,
        "<": lambda: actual < v,
        ">=": lambda: actual >= v,
        "<=": lambda: actual <= v,
        "in": lambda: actual in v,
        "not_in": lambda: actual not in v,
        "contains": lambda: v in actual,
        "not_contains": lambda: v not in actual,
        "starts_with": lambda: actual.startswith(v),
        "ends_with": lambda: actual.endswith(v),
        "in_range": lambda: v[0] <= actual <= v[1],
        "not_in_range": lambda: not v[0] <= actual <= v[1],
        "date_between": lambda: v[0] <= actual <= v[1],
    }
    return bool(simple[op]())


def rule_holds(
    rule: Mapping[str, Any], row: Row, tables: Mapping[str, set[str]], as_of: date
) -> bool:
    results = [
        rule_holds(c, row, tables, as_of)
        if "logic" in c
        else _holds(c, _value(c["field"], row, tables), as_of)
        for c in rule["conditions"]
    ]
    if rule["logic"] == "AND":
        return all(results)
    if rule["logic"] == "OR":
        return any(results)
    return not all(results)  # NOT = not(all conditions AND-ed)


def computed_tags(root: Path, tags: Tags, as_of: date) -> dict[str, set[int]]:
    """computed(u) for every user in the lake: the tags one of whose rules holds."""
    tables = columns(root)
    return {
        uid: {
            t
            for t, (_, _, rules) in tags.items()
            if any(rule_holds(r, row, tables, as_of) for r in rules)
        }
        for uid, row in read_lake(root, as_of).items()
    }


def merged(
    old: Mapping[str, Iterable[int]],
    computed: Mapping[str, set[int]],
    scope: set[int],
    users: Iterable[str],
) -> dict[str, list[int]]:
    """new(u) = (old(u) - S) ∪ computed(u) for u in users; others unchanged; no empty new rows."""
    result = {u: sorted(v) for u, v in old.items()}
    for uid in users:
        new = (set(old.get(uid, ())) - scope) | (computed.get(uid, set()) & scope)
        if new or uid in old:
            result[uid] = sorted(new)
    return result
