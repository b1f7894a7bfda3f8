"""Engines for a store URL, and the one place where database failures become StoreErrors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tagsys.errors import StoreError
from tagsys.store.adapters import READ_ONLY, StoreAdapter, adapter_for

Bind = sa.Engine | sa.Connection


def newest_first(
    query: sa.Select[Any],
    at: sa.ColumnElement[Any],
    key: sa.ColumnElement[Any],
    after: tuple[Any, Any] | None,
    limit: int,
) -> sa.Select[Any]:
    """One page of `query` by (`at`, `key`) descending: the rows after the (at, key) of the
    previous page's last row (keyset pagination: stable while rows are added)."""
    query = query.order_by(at.desc(), key.desc()).limit(limit)
    if after is None:
        return query
    last_at, last_key = after
    return query.where(sa.or_(at < last_at, sa.and_(at == last_at, key < last_key)))


def parse_url(db_url: str | sa.URL) -> sa.URL:
    try:
        return sa.make_url(db_url)
    except sa.exc.ArgumentError:
        raise StoreError(
            "the store URL is not a valid SQLAlchemy URL: expected sqlite:///PATH or "
            "mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None


def describe(url: sa.URL) -> str:
    """Names the store for messages, without the password."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite store {url.database or ':memory:'}"
    host = f"{url.host or 'localhost'}:{url.port or 3306}"
    return f"{url.get_backend_name()} store database {url.database!r} on {host} as {url.username!r}"


def create_store_engine(
    db_url: str | sa.URL, *, bulk_load: bool = False, lock_wait_seconds: int | None = None
) -> sa.Engine:
    """An engine with the dialect's settings (utf8mb4, UTC sessions, SQLite WAL, ...).

    `bulk_load` enables LOAD DATA LOCAL (client files): only the writer's bulk inserts ask.
    `lock_wait_seconds`: how long its sessions wait for a lock (else the server's default)."""
    url = parse_url(db_url)
    adapter = adapter_for(url)
    url = adapter.prepare_url(url)
    try:
        engine = sa.create_engine(
            url, json_serializer=_json_text, **adapter.engine_kwargs(bulk_load)
        )
    except ImportError as exc:
        raise StoreError(f"{describe(url)}: the database driver is missing ({exc})") from exc
    adapter.install_hooks(engine)
    if lock_wait_seconds is not None:
        _set_on_connect(engine, adapter.lock_wait_sql(lock_wait_seconds))
    return engine


def _set_on_connect(engine: sa.Engine, sql: str) -> None:
    def run(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute(sql)
        cursor.close()

    sa.event.listen(engine, "connect", run)


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def engine_adapter(engine: sa.Engine) -> StoreAdapter:
    return adapter_for(engine.url)


def _scrub(message: str, url: sa.URL) -> str:
    if url.password:
        message = message.replace(str(url.password), "***")
    return message


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return " ".join(str(arg) for arg in getattr(orig, "args", ()) or (orig,))


def connection_error(url: sa.URL, exc: BaseException) -> StoreError:
    reason = _scrub(_reason(exc), url)
    return StoreError(
        f"cannot connect to the {describe(url)} ({reason}): check that the server is running and "
        "reachable, and the host, port, user, password and database name "
        "(MYSQL_* settings or the store URL)"
    )


def statement_error(url: sa.URL, exc: BaseException) -> StoreError:
    reason = _scrub(_reason(exc), url)
    hint = ""
    if "no such table" in reason or "doesn't exist" in reason:
        hint = ": the schema is missing, run `--mode migrate`"
    return StoreError(f"the {describe(url)} refused a statement ({reason}){hint}")


def connect(engine: sa.Engine) -> sa.Connection:
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        raise connection_error(engine.url, exc) from exc


def database_now(conn: sa.Connection) -> datetime:
    """The database server's clock, in UTC. Heartbeats are stamped and judged by it, so
    instances on hosts whose clocks disagree never take each other's live work for dead."""
    value = conn.exec_driver_sql(engine_adapter(conn.engine).CLOCK_SQL).scalar()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise StoreError(f"the database's clock read {value!r}, not a time")
    return value.replace(tzinfo=UTC)


@contextmanager
def read_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that only reads: one consistent snapshot, never waiting for writers."""
    with connect(engine) as conn:
        conn.execution_options(**{READ_ONLY: True})
        try:
            with conn.begin():
                yield conn
        except sa.exc.DBAPIError as exc:
            raise statement_error(engine.url, exc) from exc


@contextmanager
def transaction(bind: Bind) -> Iterator[sa.Connection]:
    """A transaction on an engine (committed on success), or the caller's own connection."""
    if isinstance(bind, sa.Connection):
        yield bind
        return
    with connect(bind) as conn, begun(conn):
        yield conn


@contextmanager
def unlocked_reads_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction whose plain reads lock nothing and each see what is committed when they
    run (READ COMMITTED on MySQL; SQLite's one writer makes its default equivalent)."""
    level = engine_adapter(engine).UNLOCKED_READS_ISOLATION
    with connect(engine) as conn:
        if level is not None:
            with store_errors(engine.url):  # the SET is sent at once
                conn.execution_options(isolation_level=level)
        with begun(conn):
            yield conn


@contextmanager
def serialized_transaction(engine: sa.Engine, purpose: str, busy: str) -> Iterator[sa.Connection]:
    """A transaction begun once this database's `purpose` lock is held, for a check-then-write
    that must not interleave with another (see `StoreAdapter.database_lock`; `busy`: the
    error's text when the lock cannot be had)."""
    adapter = engine_adapter(engine)
    with (
        connect(engine) as conn,
        store_errors(engine.url),
        adapter.database_lock(conn, purpose, busy),
        begun(conn),
    ):
        yield conn


@contextmanager
def begun(conn: sa.Connection) -> Iterator[sa.Connection]:
    """A transaction on a connection the caller holds (committed on success); the driver's
    errors as StoreErrors."""
    with store_errors(conn.engine.url), conn.begin():
        yield conn


@contextmanager
def store_errors(url: sa.URL) -> Iterator[None]:
    """The driver's errors inside as StoreErrors that name the database and the reason."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise connection_error(url, exc) from exc
        raise statement_error(url, exc) from exc
