"""The seed's tag categories and eight tags, with their rules, as plain data.

Rules use the seed's JSON format and the fields of the demo tables (see generator.py).
The store's repository inserts them; nothing here touches a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SeedCategory:
    category_id: int
    category_name: str
    description: str


@dataclass(frozen=True)
class SeedTag:
    tag_id: int
    tag_name: str
    tag_category: str
    description: str
    rules: list[dict[str, Any]] = field(hash=False)


def _condition(field_name: str, operator: str, value: Any, value_type: str) -> dict[str, Any]:
    return {"field": field_name, "operator": operator, "value": value, "type": value_type}


def _all(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"logic": "AND", "conditions": list(conditions)}


SEED_CATEGORIES: list[SeedCategory] = [
    SeedCategory(1, "财富管理", "按资产与现金规模划分的用户"),
    SeedCategory(2, "行为分析", "按交易与登录行为划分的用户"),
    SeedCategory(3, "风险管理", "按风险评分划分的用户"),
    SeedCategory(4, "生命周期", "按注册时间划分的用户"),
    SeedCategory(5, "价值管理", "按用户等级划分的用户"),
    SeedCategory(6, "人口特征", "按年龄等人口属性划分的用户"),
]

SEED_TAGS: list[SeedTag] = [
    SeedTag(
        1,
        "高净值用户",
        "财富管理",
        "总资产不低于10万且已完成KYC认证的用户",
        [
            _all(
                _condition("total_asset_value", ">=", 100000, "number"),
                _condition("kyc_status", "=", "verified", "string"),
            )
        ],
    ),
    SeedTag(
        2,
        "活跃交易者",
        "行为分析",
        "30天内交易次数不少于10次的用户",
        [_all(_condition("trade_count_30d", ">=", 10, "number"))],
    ),
    SeedTag(
        3,
        "低风险用户",
        "风险管理",
        "风险评分不高于30的用户",
        [_all(_condition("risk_score", "<=", 30, "number"))],
    ),
    SeedTag(
        4,
        "新注册用户",
        "生命周期",
        "最近30天内注册的用户",
        [_all(_condition("registration_date", "recent_days", 30, "date"))],
    ),
    SeedTag(
        5,
        "VIP客户",
        "价值管理",
        "用户等级为VIP3及以上的用户",
        [_all(_condition("user_level", "in", ["VIP3", "VIP4", "VIP5"], "string"))],
    ),
    SeedTag(
        6,
        "现金充足用户",
        "财富管理",
        "现金余额不低于5万的用户",
        [_all(_condition("cash_balance", ">=", 50000, "number"))],
    ),
    SeedTag(
        7,
        "年轻用户",
        "人口特征",
        "年龄在18至30岁之间的用户",
        [_all(_condition("age", "in_range", [18, 30], "number"))],
    ),
    SeedTag(
        8,
        "最近活跃用户",
        "行为分析",
        "最近7天内登录过的用户",
        [_all(_condition("last_login_date", "recent_days", 7, "date"))],
    ),
]
