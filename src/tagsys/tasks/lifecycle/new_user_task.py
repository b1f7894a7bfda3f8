"""新注册用户 (生命周期): tag 4. The rule itself lives in the store (tag_rules)."""

from typing import ClassVar

from tagsys.tasks.base import BaseTagTask


class NewUserTask(BaseTagTask):
    """新注册用户 - tag id 4."""

    tag_id = 4
    expected_name = "新注册用户"
    domain = "lifecycle"
    required_fields = ("registration_date",)
    data_sources: ClassVar[dict[str, str | None]] = {
        "primary": "user_basic_info",
        "secondary": None,
    }
