"""Alembic environment. Run through tagsys.store.migrate, which passes an open connection."""

from __future__ import annotations

from alembic import context

from tagsys.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations with tagsys.store.migrate.upgrade(db_url) or `--mode migrate`"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
