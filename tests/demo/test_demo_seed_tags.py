"""The seed's eight tags and their categories, as the seed's README lists them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tagsys.demo.seed_tags import SEED_CATEGORIES, SEED_TAGS

SEED_TABLE = {
    1: ("高净值用户", "财富管理"),
    2: ("活跃交易者", "行为分析"),
    3: ("低风险用户", "风险管理"),
    4: ("新注册用户", "生命周期"),
    5: ("VIP客户", "价值管理"),
    6: ("现金充足用户", "财富管理"),
    7: ("年轻用户", "人口特征"),
    8: ("最近活跃用户", "行为分析"),
}


def test_tags_are_the_seeds_eight() -> None:
    assert {t.tag_id: (t.tag_name, t.tag_category) for t in SEED_TAGS} == SEED_TABLE


def test_every_category_used_is_defined_once() -> None:
    names = [c.category_name for c in SEED_CATEGORIES]

    assert len(names) == len(set(names))
    assert {t.tag_category for t in SEED_TAGS} == set(names)
    assert [c.category_id for c in SEED_CATEGORIES] == list(range(1, len(names) + 1))


@pytest.mark.parametrize("tag", SEED_TAGS, ids=lambda t: str(t.tag_id))
def test_rules_are_seed_format_json(tag: object) -> None:
    rules = tag.rules  # type: ignore[attr-defined]

    assert len(rules) == 1
    assert json.loads(json.dumps(rules, ensure_ascii=False)) == rules
    assert rules[0]["logic"] == "AND"
    for condition in rules[0]["conditions"]:
        assert set(condition) == {"field", "operator", "value", "type"}


def test_tags_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SEED_TAGS[0].tag_name = "x"  # type: ignore[misc]
