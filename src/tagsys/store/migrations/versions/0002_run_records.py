"""Runs are recorded when they start: who runs them, a heartbeat, the phase, the error.

Revision ID: 0002_run_records
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tagsys.store.types import UtcDateTime

revision = "0002_run_records"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("host", lambda: sa.Column("host", sa.String(255))),
    ("pid", lambda: sa.Column("pid", sa.Integer)),
    ("heartbeat_at", lambda: sa.Column("heartbeat_at", UtcDateTime)),
    ("heartbeat_seconds", lambda: sa.Column("heartbeat_seconds", sa.Float)),
    ("phase", lambda: sa.Column("phase", sa.String(16))),
    ("error", lambda: sa.Column("error", sa.Text)),
    ("rows_written", lambda: sa.Column("rows_written", sa.BigInteger)),
)


def upgrade() -> None:
    for _, column in _COLUMNS:
        op.add_column("tag_runs", column())
    op.create_index("ix_tag_runs_status", "tag_runs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_tag_runs_status", table_name="tag_runs")
    for name, _ in reversed(_COLUMNS):
        op.drop_column("tag_runs", name)
