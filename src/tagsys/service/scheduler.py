"""Schedules: a cron expression (in the business time zone) and a run request.

Every instance looks for due schedules each second; firing is a compare-and-set in the
store (`tagsys.store.schedules.fire_schedule`), so each firing creates one job across all
instances. After downtime a schedule fires once, then moves on to its next slot after now.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from croniter import CroniterBadDateError, croniter

from tagsys.errors import UsageError
from tagsys.store import schedules as store_schedules

log = logging.getLogger(__name__)


def check_cron(expression: str) -> str:
    expression = " ".join(expression.split())
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise UsageError(
            f"'{expression}' is not a cron expression: use five fields, minute hour "
            "day-of-month month day-of-week, e.g. '0 2 * * *' for 02:00 every day"
        )
    try:
        next_fire(expression, "UTC", datetime.now(UTC))
    except CroniterBadDateError as exc:
        raise UsageError(
            f"'{expression}' never falls due (a day no month has, such as 30 February): "
            "choose a day every listed month has"
        ) from exc
    return expression


def next_fire(expression: str, timezone: str, after: datetime) -> datetime:
    """The first slot of `expression` strictly after `after`, in `timezone`, as UTC.

    Slots are wall-clock times: when the clocks go back, a time the wall clock shows twice
    fires once (a nightly `30 2 * * *` does not run twice on that night)."""
    local = after.astimezone(ZoneInfo(timezone))
    slots = croniter(expression, local)
    following: datetime = slots.get_next(datetime)
    while following.replace(tzinfo=None) <= local.replace(tzinfo=None):
        following = slots.get_next(datetime)  # the wall clock went back: already fired
    return following.astimezone(UTC)


def fire_due(engine: sa.Engine, environment: str, now: datetime | None = None) -> list[str]:
    """Create the jobs of the schedules due at `now`; returns the job ids this call created."""
    now = now or datetime.now(UTC)
    created = []
    for schedule in store_schedules.due_schedules(bind=engine, now=now):
        job_id = uuid.uuid4().hex
        following = next_fire(schedule.cron, schedule.timezone, now)
        if store_schedules.fire_schedule(
            bind=engine,
            schedule=schedule,
            next_fire_at=following,
            job_id=job_id,
            environment=environment,
            now=now,
        ):
            log.info("schedule %s fired: job %s (next %s)", schedule.name, job_id, following)
            created.append(job_id)
    return created
