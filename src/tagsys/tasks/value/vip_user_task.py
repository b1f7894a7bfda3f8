"""VIP客户 (价值管理): tag 5. The rule itself lives in the store (tag_rules)."""

from typing import ClassVar

from tagsys.tasks.base import BaseTagTask


class VIPUserTask(BaseTagTask):
    """VIP客户 - tag id 5."""

    tag_id = 5
    expected_name = "VIP客户"
    domain = "value"
    required_fields = ("user_level",)
    data_sources: ClassVar[dict[str, str | None]] = {
        "primary": "user_basic_info",
        "secondary": None,
    }
