"""Tag management: a version number and soft delete on tag_definition, the immutable
tag_versions, and the tag_audit log.

Revision ID: 0005_tag_versions
Revises: 0004_journal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tagsys.store.types import MYSQL_TABLE_OPTIONS, Id, UtcDateTime

revision = "0005_tag_versions"
down_revision = "0004_journal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tag_definition") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("deleted_at", UtcDateTime))
    op.create_table(
        "tag_versions",
        sa.Column("tag_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100)),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("tag_id", "version", name="pk_tag_versions"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "tag_audit",
        sa.Column("audit_id", Id, primary_key=True, autoincrement=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(100)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("summary", sa.Text),
        sa.PrimaryKeyConstraint("audit_id", name="pk_tag_audit"),
        sqlite_autoincrement=True,
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_tag_audit_created_at", "tag_audit", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_tag_audit_created_at", table_name="tag_audit")
    op.drop_table("tag_audit")
    op.drop_table("tag_versions")
    with op.batch_alter_table("tag_definition") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("version")
