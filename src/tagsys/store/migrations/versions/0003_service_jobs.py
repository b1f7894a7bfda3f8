"""Jobs of the REST service: who claimed a job, its heartbeat, its run, cancellation, its
schedule and who asked; and the schedules that create jobs.

Revision ID: 0003_service_jobs
Revises: 0002_run_records
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tagsys.store.types import MYSQL_TABLE_OPTIONS, UtcDateTime, utc_now

revision = "0003_service_jobs"
down_revision = "0002_run_records"
branch_labels = None
depends_on = None

_JOB_COLUMNS = (
    ("owner", lambda: sa.Column("owner", sa.String(255))),
    ("heartbeat_at", lambda: sa.Column("heartbeat_at", UtcDateTime)),
    ("run_id", lambda: sa.Column("run_id", sa.String(64))),
    (
        "cancel_requested",
        lambda: sa.Column(
            "cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()
        ),
    ),
    ("schedule_id", lambda: sa.Column("schedule_id", sa.Integer)),
    ("actor", lambda: sa.Column("actor", sa.String(100))),
)


def upgrade() -> None:
    with op.batch_alter_table("tag_jobs") as batch:
        for _, column in _JOB_COLUMNS:
            batch.add_column(column())
    op.create_table(
        "tag_schedules",
        sa.Column("schedule_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("cron", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=utc_now()),
        sa.Column("created_by", sa.String(100)),
        sa.Column("next_fire_at", UtcDateTime, nullable=False),
        sa.Column("last_fired_at", UtcDateTime),
        sa.Column("last_job_id", sa.String(64)),
        sa.PrimaryKeyConstraint("schedule_id", name="pk_tag_schedules"),
        sa.UniqueConstraint("name", name="uk_tag_schedules_name"),
        sqlite_autoincrement=True,
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_tag_schedules_next_fire_at", "tag_schedules", ["next_fire_at"])


def downgrade() -> None:
    op.drop_index("ix_tag_schedules_next_fire_at", table_name="tag_schedules")
    op.drop_table("tag_schedules")
    with op.batch_alter_table("tag_jobs") as batch:
        for name, _ in reversed(_JOB_COLUMNS):
            batch.drop_column(name)
