"""年轻用户 (人口特征): tag 7. The rule itself lives in the store (tag_rules)."""

from typing import ClassVar

from tagsys.tasks.base import BaseTagTask


class YoungUserTask(BaseTagTask):
    """年轻用户 - tag id 7."""

    tag_id = 7
    expected_name = "年轻用户"
    domain = "demographic"
    required_fields = ("age",)
    data_sources: ClassVar[dict[str, str | None]] = {
        "primary": "user_basic_info",
        "secondary": None,
    }
