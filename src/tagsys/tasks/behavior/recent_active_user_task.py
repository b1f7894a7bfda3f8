"""最近活跃用户 (行为分析): tag 8. The rule itself lives in the store (tag_rules)."""

from typing import ClassVar

from tagsys.tasks.base import BaseTagTask


class RecentActiveUserTask(BaseTagTask):
    """最近活跃用户 - tag id 8."""

    tag_id = 8
    expected_name = "最近活跃用户"
    domain = "behavior"
    required_fields = ("last_login_date",)
    data_sources: ClassVar[dict[str, str | None]] = {
        "primary": "user_activity_summary",
        "secondary": None,
    }
