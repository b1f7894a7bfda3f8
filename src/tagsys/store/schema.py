"""Tables of the store, named as the seed names them, plus `tag_jobs`, `tag_schedules`,
`tag_runs`, and tag management's `tag_versions` and `tag_audit`.

This is the current shape; the database gets it only through the migrations.
"""

from __future__ import annotations

import sqlalchemy as sa

from tagsys.store.types import MYSQL_TABLE_OPTIONS, Blob, Id, JournalText, UtcDateTime, utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uk_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

JOB_STATUSES = ("submitted", "running", "completed", "failed", "cancelled")
RUN_STATUSES = ("running", "completed", "failed", "cancelled")
"""What a run's row can say; a `running` row whose heartbeat stopped reads as `abandoned`."""

tag_category = sa.Table(
    "tag_category",
    metadata,
    sa.Column("category_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("category_name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_date", UtcDateTime, nullable=False, server_default=utc_now()),
    sqlite_autoincrement=True,
    **MYSQL_TABLE_OPTIONS,
)

tag_definition = sa.Table(
    "tag_definition",
    metadata,
    sa.Column("tag_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tag_name", sa.String(200), nullable=False),
    sa.Column("tag_category", sa.String(100), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_date", UtcDateTime, nullable=False, server_default=utc_now()),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("deleted_at", UtcDateTime),
    sqlite_autoincrement=True,
    **MYSQL_TABLE_OPTIONS,
)
"""`version`: the tag's latest version in `tag_versions` (0: never changed through tag
management); every management change bumps it, compared-and-set (optimistic locking).
`deleted_at`: soft delete (the tag is also inactive, so the next task-all removes it)."""

tag_rules = sa.Table(
    "tag_rules",
    metadata,
    sa.Column("rule_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tag_id", sa.Integer, sa.ForeignKey("tag_definition.tag_id"), nullable=False),
    sa.Column("rule_conditions", sa.JSON, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_date", UtcDateTime, nullable=False, server_default=utc_now()),
    sa.Index("ix_tag_rules_tag_id", "tag_id"),
    sqlite_autoincrement=True,
    **MYSQL_TABLE_OPTIONS,
)

user_tags = sa.Table(
    "user_tags",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(100), nullable=False),
    sa.Column("tag_ids", sa.JSON, nullable=False),
    sa.Column("tag_details", sa.JSON(none_as_null=True)),
    sa.Column("created_time", UtcDateTime, nullable=False, server_default=utc_now()),
    sa.Column("updated_time", UtcDateTime, nullable=False, server_default=utc_now()),
    sa.UniqueConstraint("user_id", name="uk_user_id"),
    **MYSQL_TABLE_OPTIONS,
)

tag_jobs = sa.Table(
    "tag_jobs",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("environment", sa.String(64)),
    sa.Column("submitted_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime),
    sa.Column("completed_at", UtcDateTime),
    sa.Column("result", sa.JSON(none_as_null=True)),
    sa.Column("error", sa.Text),
    sa.Column("owner", sa.String(255)),
    sa.Column("heartbeat_at", UtcDateTime),
    sa.Column("run_id", sa.String(64)),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("schedule_id", sa.Integer),
    sa.Column("actor", sa.String(100)),
    sa.Index("ix_tag_jobs_status", "status"),
    sa.Index("ix_tag_jobs_submitted_at", "submitted_at"),
    **MYSQL_TABLE_OPTIONS,
)

tag_schedules = sa.Table(
    "tag_schedules",
    metadata,
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
    sa.UniqueConstraint("name", name="uk_tag_schedules_name"),
    sa.Index("ix_tag_schedules_next_fire_at", "next_fire_at"),
    sqlite_autoincrement=True,
    **MYSQL_TABLE_OPTIONS,
)

tag_runs = sa.Table(
    "tag_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("mode", sa.String(32), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", sa.JSON(none_as_null=True)),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.Column("heartbeat_at", UtcDateTime),
    sa.Column("heartbeat_seconds", sa.Float),
    sa.Column("phase", sa.String(16)),
    sa.Column("error", sa.Text),
    sa.Column("rows_written", sa.BigInteger),
    sa.Column("journal", sa.String(16)),
    sa.Index("ix_tag_runs_started_at", "started_at"),
    sa.Index("ix_tag_runs_status", "status"),
    **MYSQL_TABLE_OPTIONS,
)

JOURNAL_STATES = ("on", "off", "pruned")
"""`tag_runs.journal`: the run journaled its writes, did not (journal off, dry run), or its
entries were pruned. NULL for runs recorded before the journal existed."""

user_tags_journal = sa.Table(
    "user_tags_journal",
    metadata,
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
    sa.Index("ix_user_tags_journal_user_id", "user_id", "written_at"),
    **MYSQL_TABLE_OPTIONS,
)
"""One entry per user_tags row a run inserted, updated or deleted, written in the same
transaction: the before image (NULL ids = no row), the after content (NULL ids = deleted;
its details as their MD5: the rows hold the text), and the tag ids entered and exited."""
tag_versions = sa.Table(
    "tag_versions",
    metadata,
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
"""Immutable: one row per change of a tag or its rules, with the full definition after it."""

tag_audit = sa.Table(
    "tag_audit",
    metadata,
    sa.Column("audit_id", Id, primary_key=True, autoincrement=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("entity", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer),
    sa.Column("comment", sa.Text),
    sa.Column("summary", sa.Text),
    sa.Index("ix_tag_audit_created_at", "created_at"),
    sqlite_autoincrement=True,
    **MYSQL_TABLE_OPTIONS,
)
"""Every management change (categories and tags), newest last."""

user_index = sa.Table(
    "user_index",
    metadata,
    sa.Column("idx", Id, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(100), nullable=False),
    sa.UniqueConstraint("user_id", name="uk_user_index_user_id"),
    sqlite_autoincrement=True,
    **MYSQL_TABLE_OPTIONS,
)
"""A dense integer per user, assigned once and never reused: the audience bitmaps' domain."""

audience_index = sa.Table(
    "audience_index",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("published_at", UtcDateTime),
    sa.Column("rebuilt_at", UtcDateTime),
    **MYSQL_TABLE_OPTIONS,
)
"""One row (id 1): the published generation of the index. `rebuilt_at` NULL: never built."""

audience_bitmaps = sa.Table(
    "audience_bitmaps",
    metadata,
    sa.Column("tag_id", sa.Integer, nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("members", sa.BigInteger, nullable=False),
    sa.Column("bitmap", Blob, nullable=False),
    sa.PrimaryKeyConstraint("tag_id", "generation", name="pk_audience_bitmaps"),
    **MYSQL_TABLE_OPTIONS,
)
"""Per tag, its members as a serialized Roaring bitmap of `user_index.idx`, from the
generation that last changed it (tag 0: every user with a row). One row per tag: a
publication replaces the rows of the tags it changed, in one transaction."""

audience_index_runs = sa.Table(
    "audience_index_runs",
    metadata,
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("run_id", name="pk_audience_index_runs"),
    **MYSQL_TABLE_OPTIONS,
)
"""Runs whose writes the index holds (and the generation that took them in)."""

audiences = sa.Table(
    "audiences",
    metadata,
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("expression", sa.JSON, nullable=False),
    sa.Column("owner", sa.String(100)),
    sa.Column("description", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("name", name="pk_audiences"),
    **MYSQL_TABLE_OPTIONS,
)

audience_sizes = sa.Table(
    "audience_sizes",
    metadata,
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("name", "generation", name="pk_audience_sizes"),
    **MYSQL_TABLE_OPTIONS,
)
"""A saved audience's size at each published generation of the index."""
