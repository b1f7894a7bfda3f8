"""The seed's four tables plus tag_jobs and tag_runs.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tagsys.store.types import MYSQL_TABLE_OPTIONS, Id, UtcDateTime, utc_now

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _active() -> sa.Column[bool]:
    return sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true())


def _created(name: str = "created_date") -> sa.Column[object]:
    return sa.Column(name, UtcDateTime, nullable=False, server_default=utc_now())


def upgrade() -> None:
    op.create_table(
        "tag_category",
        sa.Column("category_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("category_name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text),
        _active(),
        _created(),
        sa.PrimaryKeyConstraint("category_id", name="pk_tag_category"),
        sqlite_autoincrement=True,
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "tag_definition",
        sa.Column("tag_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tag_name", sa.String(200), nullable=False),
        sa.Column("tag_category", sa.String(100), nullable=False),
        sa.Column("description", sa.Text),
        _active(),
        _created(),
        sa.PrimaryKeyConstraint("tag_id", name="pk_tag_definition"),
        sqlite_autoincrement=True,
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "tag_rules",
        sa.Column("rule_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tag_id", sa.Integer, nullable=False),
        sa.Column("rule_conditions", sa.JSON, nullable=False),
        _active(),
        _created(),
        sa.PrimaryKeyConstraint("rule_id", name="pk_tag_rules"),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["tag_definition.tag_id"],
            name="fk_tag_rules_tag_id_tag_definition",
        ),
        sqlite_autoincrement=True,
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_tag_rules_tag_id", "tag_rules", ["tag_id"])
    op.create_table(
        "user_tags",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("tag_ids", sa.JSON, nullable=False),
        sa.Column("tag_details", sa.JSON),
        _created("created_time"),
        _created("updated_time"),
        sa.PrimaryKeyConstraint("id", name="pk_user_tags"),
        sa.UniqueConstraint("user_id", name="uk_user_id"),
        **MYSQL_TABLE_OPTIONS,
    )
    create_tag_jobs()
    create_tag_runs()


#: The product's own tables (not in the original system's schema), by name: adopting an
#: original database creates the missing ones at this revision (tagsys.store.adopt).
def create_tag_jobs() -> None:
    op.create_table(
        "tag_jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("environment", sa.String(64)),
        sa.Column("submitted_at", UtcDateTime, nullable=False),
        sa.Column("started_at", UtcDateTime),
        sa.Column("completed_at", UtcDateTime),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("job_id", name="pk_tag_jobs"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_tag_jobs_status", "tag_jobs", ["status"])
    op.create_index("ix_tag_jobs_submitted_at", "tag_jobs", ["submitted_at"])


def create_tag_runs() -> None:
    op.create_table(
        "tag_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.JSON),
        sa.PrimaryKeyConstraint("run_id", name="pk_tag_runs"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_tag_runs_started_at", "tag_runs", ["started_at"])


PRODUCT_TABLES = {"tag_jobs": create_tag_jobs, "tag_runs": create_tag_runs}


def downgrade() -> None:
    for table in ("tag_runs", "tag_jobs", "user_tags", "tag_rules", "tag_definition"):
        op.drop_table(table)
    op.drop_table("tag_category")
