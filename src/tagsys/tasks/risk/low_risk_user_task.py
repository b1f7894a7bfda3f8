"""低风险用户 (风险管理): tag 3. The rule itself lives in the store (tag_rules)."""

from typing import ClassVar

from tagsys.tasks.base import BaseTagTask


class LowRiskUserTask(BaseTagTask):
    """低风险用户 - tag id 3."""

    tag_id = 3
    expected_name = "低风险用户"
    domain = "risk"
    required_fields = ("risk_score",)
    data_sources: ClassVar[dict[str, str | None]] = {
        "primary": "user_basic_info",
        "secondary": None,
    }
