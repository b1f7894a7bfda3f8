"""Audiences: dense user ids, the published bitmap index of tag membership, the runs it
has applied, saved audiences and their size history.

Revision ID: 0006_audiences
Revises: 0005_tag_versions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tagsys.store.types import MYSQL_TABLE_OPTIONS, Blob, Id, UtcDateTime

revision = "0006_audiences"
down_revision = "0005_tag_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_index",
        sa.Column("idx", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("idx", name="pk_user_index"),
        sa.UniqueConstraint("user_id", name="uk_user_index_user_id"),
        sqlite_autoincrement=True,
        **MYSQL_TABLE_OPTIONS,
    )
    state = op.create_table(
        "audience_index",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("published_at", UtcDateTime),
        sa.Column("rebuilt_at", UtcDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_audience_index"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.bulk_insert(state, [{"id": 1, "generation": 0}])
    op.create_table(
        "audience_bitmaps",
        sa.Column("tag_id", sa.Integer, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("members", sa.BigInteger, nullable=False),
        sa.Column("bitmap", Blob, nullable=False),
        sa.PrimaryKeyConstraint("tag_id", "generation", name="pk_audience_bitmaps"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "audience_index_runs",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_audience_index_runs"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "audiences",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("expression", sa.JSON, nullable=False),
        sa.Column("owner", sa.String(100)),
        sa.Column("description", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_audiences"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "audience_sizes",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", "generation", name="pk_audience_sizes"),
        **MYSQL_TABLE_OPTIONS,
    )


def downgrade() -> None:
    for table in (
        "audience_sizes",
        "audiences",
        "audience_index_runs",
        "audience_bitmaps",
        "audience_index",
        "user_index",
    ):
        op.drop_table(table)
