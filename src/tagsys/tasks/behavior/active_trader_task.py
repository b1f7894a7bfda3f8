"""活跃交易者 (行为分析): tag 2. The rule itself lives in the store (tag_rules)."""

from typing import ClassVar

from tagsys.tasks.base import BaseTagTask


class ActiveTraderTask(BaseTagTask):
    """活跃交易者 - tag id 2."""

    tag_id = 2
    expected_name = "活跃交易者"
    domain = "behavior"
    required_fields = ("trade_count_30d",)
    data_sources: ClassVar[dict[str, str | None]] = {
        "primary": "user_activity_summary",
        "secondary": None,
    }
