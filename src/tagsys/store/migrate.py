"""Versioned schema migrations (Alembic, configured in code: no alembic.ini at run time).

New revision for developers:
    alembic.command.revision(make_config(), "why", autogenerate=False)
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command, util
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tagsys.errors import StoreError
from tagsys.store.adapters import adapter_for
from tagsys.store.db import (
    connect,
    create_store_engine,
    describe,
    engine_adapter,
    statement_error,
)
from tagsys.store.db import transaction as store_transaction

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_checked: set[str] = set()
_checked_lock = threading.Lock()


def make_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(make_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}: the package is incomplete")
    return head


def _revision_of(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def current_revision(db_url: str) -> str | None:
    """The database's schema revision, or None if it was never migrated."""
    engine = create_store_engine(db_url)
    try:
        with connect(engine) as conn:
            try:
                return _revision_of(conn)
            except sa.exc.DBAPIError as exc:
                raise statement_error(engine.url, exc) from exc
    finally:
        engine.dispose()


def upgrade(db_url: str) -> str:
    """Create or upgrade the schema to head; a no-op at head. Never touches data rows."""
    engine = create_store_engine(db_url)
    adapter = engine_adapter(engine)
    try:
        with store_transaction(engine) as conn, adapter.migration_lock(conn):
            _check_known(engine, _revision_of(conn))
            config = make_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            return _revision_of(conn) or head_revision()
    finally:
        engine.dispose()


def ensure_schema(db_url: str) -> None:
    """Make sure the store is at head: SQLite migrates itself, MySQL must be migrated explicitly."""
    with _checked_lock:
        if db_url in _checked:
            return
        current = current_revision(db_url)
        head = head_revision()
        if current != head:
            engine_url = sa.make_url(db_url)
            if not adapter_for(engine_url).MIGRATES_ON_FIRST_USE:
                raise StoreError(
                    f"the {describe(engine_url)} is at schema revision {current or 'none'}, "
                    f"this version needs {head}: run `tagsys --env ENV --mode migrate` first"
                )
            upgrade(db_url)
        _checked.add(db_url)


def _check_known(engine: sa.Engine, current: str | None) -> None:
    if current is None:
        return
    try:
        ScriptDirectory.from_config(make_config()).get_revision(current)
    except util.CommandError:
        raise StoreError(
            f"the {describe(engine.url)} is at schema revision {current}, which this version of "
            "tagsys does not know: it was migrated by a newer version; upgrade tagsys"
        ) from None
