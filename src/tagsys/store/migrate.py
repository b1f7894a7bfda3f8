"""Versioned schema migrations (Alembic, configured in code: no alembic.ini at run time).

New revision for developers:
    alembic.command.revision(make_config(), "why", autogenerate=False)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import command, util
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tagsys.errors import StoreError
from tagsys.store.adapters import READ_ONLY, StoreAdapter, adapter_for
from tagsys.store.adopt import ADOPTED_REVISION, AdoptionPlan, adopt, is_original, plan_adoption
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


def revision_module(revision: str) -> ModuleType:
    """The module of one shipped migration (its helpers are reused when adopting)."""
    return ScriptDirectory.from_config(make_config()).get_revision(revision).module


def _revision_of(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def current_revision(db_url: str) -> str | None:
    """The database's schema revision, or None if it was never migrated."""
    engine = create_store_engine(db_url)
    try:
        with connect(engine) as conn:
            conn.execution_options(**{READ_ONLY: True})  # SQLite: waits for no writer
            try:
                return _revision_of(conn)
            except sa.exc.DBAPIError as exc:
                raise statement_error(engine.url, exc) from exc
    finally:
        engine.dispose()


def upgrade(db_url: str, *, adopt: bool = False) -> str:
    """Create or upgrade the schema to head; a no-op at head. Never deletes data rows.

    A database of the original system is adopted in place first (see `store.adopt`), but
    only with `adopt=True`: without it, nothing changes and a StoreError says what to do.
    """
    engine = create_store_engine(db_url)
    adapter = engine_adapter(engine)
    try:
        _adopt_original(engine, adapter, adopt)
        with store_transaction(engine) as conn, adapter.migration_lock(conn):
            _check_known(engine, _revision_of(conn))
            config = make_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            return _revision_of(conn) or head_revision()
    finally:
        engine.dispose()


def adoption_plan(db_url: str) -> AdoptionPlan | None:
    """What adopting the store would do, or None if it is not an original system's database."""
    engine = create_store_engine(db_url)
    try:
        with _autocommit(engine) as conn:
            return plan_adoption(conn) if is_original(conn) else None
    finally:
        engine.dispose()


def is_original_store(db_url: str) -> bool:
    """Whether the store holds the original system's tables and no schema revision of ours."""
    engine = create_store_engine(db_url)
    try:
        with _autocommit(engine) as conn:
            return is_original(conn)
    finally:
        engine.dispose()


def _adopt_original(engine: sa.Engine, adapter: StoreAdapter, confirmed: bool) -> None:
    with _autocommit(engine) as conn, adapter.migration_lock(conn):
        if not is_original(conn):
            return
        if not confirmed:
            raise StoreError(
                f"the {describe(engine.url)} holds the original system's tables "
                "(bigdata_tag_system) and no tagsys schema revision: nothing was changed. "
                "Run `--mode migrate` to see the adoption plan, then `--mode migrate --yes` "
                "to apply it"
            )

        def stamp() -> None:
            config = make_config()
            config.attributes["connection"] = conn
            command.stamp(config, ADOPTED_REVISION)

        adopt(conn, plan_adoption(conn, count_rows=False), stamp)


@contextmanager
def _autocommit(engine: sa.Engine) -> Iterator[sa.Connection]:
    with connect(engine) as conn:
        try:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.DBAPIError as exc:
            raise statement_error(engine.url, exc) from exc


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
