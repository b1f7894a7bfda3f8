"""高净值用户 (财富管理): tag 1. The rule itself lives in the store (tag_rules)."""

from typing import ClassVar

from tagsys.tasks.base import BaseTagTask


class HighNetWorthUserTask(BaseTagTask):
    """高净值用户 - tag id 1."""

    tag_id = 1
    expected_name = "高净值用户"
    domain = "wealth"
    required_fields = ("total_asset_value", "cash_balance")
    data_sources: ClassVar[dict[str, str | None]] = {
        "primary": "user_asset_summary",
        "secondary": "user_basic_info",
    }
