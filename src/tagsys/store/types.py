"""Column types shared by the schema and its migrations. Keep them stable: migrations import them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""BIGINT, except on SQLite where only INTEGER PRIMARY KEY autoincrements."""

JournalText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
"""JSON text of the journal (kept as written: no server-side validation or reformatting)."""


def to_utc_naive(value: datetime) -> datetime:
    """The store keeps naive UTC; a naive input is taken to be UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Naive UTC in the database (microseconds on MySQL), aware UTC in Python."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else to_utc_naive(value)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class utc_now(FunctionElement[datetime]):
    """Server default for UtcDateTime columns (sessions run with time_zone '+00:00')."""

    type = sa.DateTime()
    inherit_cache = True


@compiles(utc_now)
def _utc_now_default(element: utc_now, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utc_now, "mysql")
@compiles(utc_now, "mariadb")
def _utc_now_mysql(element: utc_now, compiler: Any, **kw: Any) -> str:
    # A DATETIME(6) default must carry the same precision on MySQL 8.
    return "CURRENT_TIMESTAMP(6)"


MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
"""Binary collation: user ids 'a' and 'A' are different users, and sort as Python sorts them."""


Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
"""Serialized bitmaps: LONGBLOB on MySQL (a BLOB holds only 64 KB)."""
