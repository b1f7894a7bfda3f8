"""The `tag_schedules` table: named run requests that create a job when they fall due.

Firing is a compare-and-set on `next_fire_at` in the same transaction as the job's insert,
so each due firing creates exactly one job however many service instances look at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tagsys.errors import ConflictError
from tagsys.store.db import Bind, transaction
from tagsys.store.jobs import create_job
from tagsys.store.schema import tag_schedules


@dataclass(frozen=True)
class ScheduleRecord:
    schedule_id: int
    name: str
    cron: str
    timezone: str
    request: dict[str, Any]
    is_active: bool
    created_at: datetime
    created_by: str | None
    next_fire_at: datetime
    last_fired_at: datetime | None
    last_job_id: str | None


_FIELDS = frozenset(f.name for f in fields(ScheduleRecord))


def _schedule(row: sa.Row[Any]) -> ScheduleRecord:
    values = {k: v for k, v in row._asdict().items() if k in _FIELDS}
    values["is_active"] = bool(values["is_active"])
    return ScheduleRecord(**values)


def create_schedule(
    *,
    bind: Bind,
    name: str,
    cron: str,
    timezone: str,
    request: Mapping[str, Any],
    next_fire_at: datetime,
    created_by: str | None = None,
) -> ScheduleRecord:
    values = {
        "name": name,
        "cron": cron,
        "timezone": timezone,
        "request": dict(request),
        "next_fire_at": next_fire_at,
        "created_by": created_by,
        "created_at": datetime.now(UTC),
    }
    with transaction(bind) as conn:
        try:
            key = conn.execute(sa.insert(tag_schedules).values(**values)).inserted_primary_key
        except sa.exc.IntegrityError as exc:  # the unique name, taken by a concurrent create
            raise ConflictError(
                f"a schedule named '{name}' exists already", code="duplicate_name"
            ) from exc
        assert key is not None
        row = conn.execute(
            sa.select(tag_schedules).where(tag_schedules.c.schedule_id == key[0])
        ).one()
    return _schedule(row)


def find_schedule_by_name(*, bind: Bind, name: str) -> ScheduleRecord | None:
    query = sa.select(tag_schedules).where(tag_schedules.c.name == name)
    with transaction(bind) as conn:
        row = conn.execute(query).first()
    return None if row is None else _schedule(row)


def get_schedule(*, bind: Bind, schedule_id: int) -> ScheduleRecord | None:
    query = sa.select(tag_schedules).where(tag_schedules.c.schedule_id == schedule_id)
    with transaction(bind) as conn:
        row = conn.execute(query).first()
    return None if row is None else _schedule(row)


def list_schedules(*, bind: Bind) -> list[ScheduleRecord]:
    query = sa.select(tag_schedules).order_by(tag_schedules.c.schedule_id)
    with transaction(bind) as conn:
        return [_schedule(row) for row in conn.execute(query)]


def delete_schedule(*, bind: Bind, schedule_id: int) -> bool:
    stmt = sa.delete(tag_schedules).where(tag_schedules.c.schedule_id == schedule_id)
    with transaction(bind) as conn:
        return bool(conn.execute(stmt).rowcount)


def due_schedules(*, bind: Bind, now: datetime) -> list[ScheduleRecord]:
    query = (
        sa.select(tag_schedules)
        .where(tag_schedules.c.is_active == sa.true(), tag_schedules.c.next_fire_at <= now)
        .order_by(tag_schedules.c.next_fire_at)
    )
    with transaction(bind) as conn:
        return [_schedule(row) for row in conn.execute(query)]


def fire_schedule(
    *,
    bind: Bind,
    schedule: ScheduleRecord,
    next_fire_at: datetime,
    job_id: str,
    environment: str | None,
    now: datetime,
) -> bool:
    """Create the schedule's job and move its next firing, if no one else did it first."""
    with transaction(bind) as conn:
        moved = conn.execute(
            sa.update(tag_schedules)
            .where(
                tag_schedules.c.schedule_id == schedule.schedule_id,
                tag_schedules.c.next_fire_at == schedule.next_fire_at,
            )
            .values(next_fire_at=next_fire_at, last_fired_at=now, last_job_id=job_id)
        ).rowcount
        if not moved:
            return False
        create_job(
            bind=conn,
            job_id=job_id,
            request=schedule.request,
            environment=environment,
            actor=f"schedule:{schedule.name}",
            schedule_id=schedule.schedule_id,
        )
    return True
