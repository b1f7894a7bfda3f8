"""The change journal: one entry per user_tags row a run wrote (before image, after content).

Revision ID: 0004_journal
Revises: 0003_service_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tagsys.store.types import MYSQL_TABLE_OPTIONS, JournalText, UtcDateTime

revision = "0004_journal"
down_revision = "0003_service_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_tags_journal",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("written_at", UtcDateTime, nullable=False),
        sa.Column("before_ids", JournalText),
        sa.Column("before_details", JournalText),
        sa.Column("before_updated", UtcDateTime),
        sa.Column("after_ids", JournalText),
        sa.Column("after_details_md5", sa.String(32)),
        sa.Column("entered", JournalText, nullable=False),
        sa.Column("exited", JournalText, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "user_id", name="pk_user_tags_journal"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_user_tags_journal_user_id", "user_tags_journal", ["user_id", "written_at"])
    op.add_column("tag_runs", sa.Column("journal", sa.String(16)))


def downgrade() -> None:
    op.drop_column("tag_runs", "journal")
    op.drop_table("user_tags_journal")
