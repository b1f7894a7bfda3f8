"""Deterministic benchmark tags: the seed's 8 plus generated rules over the demo lake's columns.

Generated rules mix every operator family (comparisons, in/not_in, null tests, text tests,
ranges, relative and absolute dates), nest AND/OR/NOT groups, and sometimes give a tag two
rules (OR-ed). Everything is drawn from `random.Random(seed)`: same arguments, same tags.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tagsys.demo.generator import KYC_STATUSES, USER_LEVELS
from tagsys.demo.seed_tags import SEED_CATEGORIES, SEED_TAGS

Rule = dict[str, Any]

NUMBER_FIELDS: dict[str, tuple[float, float]] = {
    "age": (16, 80),
    "risk_score": (0, 100),
    "total_asset_value": (1_000, 300_000),
    "cash_balance": (500, 80_000),
    "trade_count_30d": (0, 30),
}
STRING_FIELDS: dict[str, tuple[str, ...]] = {
    "user_level": USER_LEVELS,
    "kyc_status": KYC_STATUSES,
}
DATE_FIELDS: tuple[str, ...] = ("registration_date", "last_login_date")
QUALIFIED = {"age": "user_basic_info.age", "cash_balance": "user_asset_summary.cash_balance"}
TEXT_PIECES = ("VIP", "V", "IP", "1", "5", "ver", "ed", "pend", "%", "_", "NORMAL")


@dataclass(frozen=True)
class BenchTag:
    tag_id: int
    tag_name: str
    tag_category: str
    rules: list[Rule]


def bench_tags(count: int, seed: int = 7, as_of: date | None = None) -> list[BenchTag]:
    """`count` tags: the seed's (ids 1-8) first, then generated ones (ids 9...)."""
    seeds = [BenchTag(t.tag_id, t.tag_name, t.tag_category, list(t.rules)) for t in SEED_TAGS]
    if count <= len(seeds):
        return seeds[:count]
    rng = random.Random(seed)
    anchor = as_of or date(2025, 6, 30)
    categories = [c.category_name for c in SEED_CATEGORIES]
    generated = []
    for tag_id in range(len(seeds) + 1, count + 1):
        rules = [_group(rng, anchor, depth=0) for _ in range(rng.choice((1, 1, 1, 2)))]
        category = categories[tag_id % len(categories)]
        generated.append(BenchTag(tag_id, f"bench_tag_{tag_id:04d}", category, rules))
    return seeds + generated


def _group(rng: random.Random, anchor: date, depth: int) -> Rule:
    """Top-level groups are mostly ANDs of 2-3 tests, so a typical tag matches a minority."""
    if depth:
        logic, size = rng.choice(("AND", "AND", "OR", "NOT")), rng.randint(1, 3)
    else:
        logic, size = "AND", rng.randint(2, 4)
    nodes = []
    for _ in range(size):
        if depth < 2 and rng.random() < 0.3:
            nodes.append(_group(rng, anchor, depth + 1))
        else:
            nodes.append(_condition(rng, anchor))
    return {"logic": logic, "conditions": nodes}


def _condition(rng: random.Random, anchor: date) -> Rule:
    family = rng.choice(("number", "number", "string", "string", "date", "date", "null"))
    if family == "number":
        return _number_condition(rng)
    if family == "string":
        return _string_condition(rng)
    if family == "date":
        return _date_condition(rng, anchor)
    return _null_condition(rng)


def _typed(rng: random.Random, field: str, op: str, value: Any, kind: str) -> Rule:
    condition: Rule = {"field": QUALIFIED.get(field, field) if rng.random() < 0.2 else field}
    condition["operator"] = op
    if value is not None:
        condition["value"] = value
    if rng.random() < 0.5:
        condition["type"] = kind
    return condition


def _number(rng: random.Random, field: str) -> int | float:
    low, high = NUMBER_FIELDS[field]
    value = rng.uniform(low, high)
    if field == "risk_score":
        return round(value) + rng.choice((0, 0.5))
    return int(value)


def _number_condition(rng: random.Random) -> Rule:
    field = rng.choice(sorted(NUMBER_FIELDS))
    op = rng.choice(("=", "!=", ">", "<", ">=", "<=", "in", "not_in", "in_range", "not_in_range"))
    if op in ("in", "not_in"):
        value: Any = sorted({_number(rng, field) for _ in range(rng.randint(1, 4))})
        if field in ("age", "trade_count_30d"):
            value = [int(v) for v in value]
    elif op in ("in_range", "not_in_range"):
        value = sorted((_number(rng, field), _number(rng, field)))
    elif op in ("=", "!=") and field not in ("age", "trade_count_30d"):
        op = rng.choice((">", "<="))
        value = _number(rng, field)
    else:
        value = _number(rng, field)
    return _typed(rng, field, op, value, "number")


def _string_condition(rng: random.Random) -> Rule:
    field = rng.choice(sorted(STRING_FIELDS))
    choices = STRING_FIELDS[field]
    op = rng.choice(
        (
            *("=", "!=", ">", "<=", "in", "not_in"),
            *("contains", "not_contains", "starts_with", "ends_with"),
        )
    )
    if op in ("in", "not_in"):
        value: Any = sorted(rng.sample(choices, rng.randint(1, len(choices) - 1)))
    elif op in ("contains", "not_contains", "starts_with", "ends_with"):
        value = rng.choice(TEXT_PIECES)
    else:
        value = rng.choice(choices)
    return _typed(rng, field, op, value, "string")


def _date_condition(rng: random.Random, anchor: date) -> Rule:
    field = rng.choice(DATE_FIELDS)
    op = rng.choice(("recent_days", "days_ago", "days_ago_between", "date_between", ">=", "<"))
    if op in ("recent_days", "days_ago"):
        value: Any = rng.choice((1, 7, 30, 90, 365, 1000))
    elif op == "days_ago_between":
        value = sorted(rng.sample((0, 3, 14, 60, 200, 800), 2))
    else:
        days = sorted(rng.sample(range(0, 2000), 2))
        pair = [(anchor - timedelta(d)).isoformat() for d in reversed(days)]
        value = pair if op == "date_between" else pair[0]
    return _typed(rng, field, op, value, "date")


def _null_condition(rng: random.Random) -> Rule:
    field = rng.choice((*sorted(NUMBER_FIELDS), *sorted(STRING_FIELDS), *DATE_FIELDS))
    kind = "number" if field in NUMBER_FIELDS else "string" if field in STRING_FIELDS else "date"
    return _typed(rng, field, rng.choice(("is_null", "is_not_null")), None, kind)


def changed_rule(threshold: float) -> list[Rule]:
    """Tag 3's rule with another threshold: the 10%-change re-run moves it from 30 to 40."""
    condition = {"field": "risk_score", "operator": "<=", "value": threshold, "type": "number"}
    return [{"logic": "AND", "conditions": [condition]}]


CHANGED_TAG = 3
BASE_THRESHOLD = 30
CHANGED_THRESHOLD = 40
