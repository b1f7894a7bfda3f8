"""Shared data and helpers of the store tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from tagsys.store import runs, writer
from tagsys.tagsets import TagInfo, TagScope

T1 = datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)
T2 = datetime(2026, 1, 2, 8, 0, 0, 654321, tzinfo=UTC)
T3 = datetime(2026, 1, 3, 8, 0, 0, tzinfo=UTC)

DEFINITIONS = {
    1: TagInfo("高净值用户", "财富"),
    2: TagInfo("VIP客户", "价值"),
    3: TagInfo("年轻用户", "人口"),
    4: TagInfo("活跃交易者", "行为"),
    5: TagInfo("低风险用户", "风险"),
    6: TagInfo("新注册用户", "生命周期"),
    7: TagInfo("最近活跃用户", "行为"),
    8: TagInfo("现金充足用户", "财富"),
}


def request_for(
    url: str,
    scope: TagScope | None = None,
    written_at: datetime = T1,
    batch_size: int = 2000,
    **kwargs: object,
) -> writer.WriteRequest:
    return writer.WriteRequest(
        db_url=url,
        scope=scope or TagScope(all_tags=True),
        definitions=dict(DEFINITIONS),
        written_at=written_at,
        batch_size=batch_size,
        **kwargs,  # type: ignore[arg-type]
    )


def start_run(
    engine: sa.Engine,
    run_id: str,
    *,
    mode: str = "task-all",
    journal: str = "on",
    heartbeat_seconds: float = 60,
) -> None:
    """A run's tag_runs row as a run of another process starts it (live for a minute)."""
    runs.start_run(
        bind=engine,
        run_id=run_id,
        mode=mode,
        as_of=date(2026, 1, 1),
        host="elsewhere",
        pid=1,
        heartbeat_seconds=heartbeat_seconds,
        journal=journal,
    )
