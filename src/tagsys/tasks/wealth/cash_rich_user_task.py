"""现金充足用户 (财富管理): tag 6. The rule itself lives in the store (tag_rules)."""

from typing import ClassVar

from tagsys.tasks.base import BaseTagTask


class CashRichUserTask(BaseTagTask):
    """现金充足用户 - tag id 6."""

    tag_id = 6
    expected_name = "现金充足用户"
    domain = "wealth"
    required_fields = ("cash_balance",)
    data_sources: ClassVar[dict[str, str | None]] = {
        "primary": "user_asset_summary",
        "secondary": None,
    }
