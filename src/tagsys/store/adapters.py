"""What differs between the store's database engines, in one class per dialect.

Differences are class attributes and SQL strings, so callers never branch on the dialect name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pyarrow as pa
import sqlalchemy as sa

from tagsys.errors import StoreError
from tagsys.store.types import to_utc_naive

log = logging.getLogger(__name__)
T = TypeVar("T")


READ_ONLY = "tagsys_read_only"
"""Connection option of `db.read_transaction`: on SQLite a deferred BEGIN, a snapshot that
neither waits for nor blocks the writer (WAL)."""


class Retry(Enum):
    """How a failed write attempt may be retried."""

    ROLLBACK = "rollback"  # lock conflict: roll back, wait, try again on the same connection
    RECONNECT = "reconnect"  # connection lost: discard it, wait, try again on a new one


_UPSERT_COLUMNS = "user_id, tag_ids, tag_details, created_time, updated_time"
JOURNAL_COLUMNS = (
    "run_id",
    "user_id",
    "written_at",
    "before_ids",
    "before_details",
    "before_updated",
    "after_ids",
    "after_details_md5",
    "entered",
    "exited",
)
"""The order of a journal entry's values (see `tagsys.store.journal.JournalEntry`)."""
_JOURNAL_LIST = ", ".join(JOURNAL_COLUMNS)

EXISTING_ROWS_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("tag_ids", pa.string()), ("details_digest", pa.string())]
)
"""What the engine reads of existing rows: the ids, and only a digest of the (large) details:
its SHA-1 (see `details_digest`)."""


LOCK_TIMEOUT_SECONDS = 30
"""How long a check-then-write waits for another one (`StoreAdapter.database_lock`)."""


class StoreAdapter:
    """Base of the dialect adapters. Subclasses override the class attributes."""

    NAME: ClassVar[str] = ""
    MAX_CONCURRENT_WRITERS: ClassVar[int | None] = None
    """How many write_rows calls may usefully run at once (None: no limit of our own)."""
    MAX_IN_PARAMS: ClassVar[int] = 1000
    MIGRATES_ON_FIRST_USE: ClassVar[bool] = False
    BEGIN_WRITE_SQL: ClassVar[str] = "BEGIN"
    SELECT_FOR_MERGE_SQL: ClassVar[str] = ""
    SELECT_FOR_READ_SQL: ClassVar[str] = (
        "SELECT user_id, tag_ids, tag_details, created_time, updated_time FROM user_tags"
        " WHERE user_id IN ({ids}) ORDER BY user_id"
    )
    UPSERT_SQL: ClassVar[str] = ""
    INSERT_NEW_SQL: ClassVar[str] = ""
    """Insert rows of users believed to have none; a row that exists after all is left alone."""
    READ_RANGE_SQL: ClassVar[str] = ""
    """Existing rows by id range: user_id, tag_ids and tag_details (or its SHA-1, see below)."""
    DIGESTS_IN_SQL: ClassVar[bool] = False
    """True when READ_RANGE_SQL returns SHA1(tag_details) itself, else the reader hashes."""
    ID_STATS_SQL: ClassVar[str] = "SELECT COUNT(*), MIN(id), MAX(id) FROM user_tags"
    ID_BUCKETS_SQL: ClassVar[str] = (
        "SELECT (id - {low}) / {width} AS bucket, COUNT(*) FROM user_tags"
        " GROUP BY bucket ORDER BY bucket"
    )
    """Rows per run of `width` ids from `low` (counted on an index, not the rows' pages)."""
    BULK_CHUNK_ROWS: ClassVar[int] = 20_000
    """New rows per insert transaction."""
    HAS_TAG_SQL: ClassVar[str] = (
        "EXISTS (SELECT 1 FROM json_each(user_tags.tag_ids) WHERE json_each.value = :tag_id)"
    )
    """A condition on a user_tags row: its tag_ids hold :tag_id (an integer)."""
    TAG_COUNTS_SQL: ClassVar[str] = (
        "SELECT CAST(j.value AS INTEGER), COUNT(*) FROM user_tags, json_each(user_tags.tag_ids) j"
        " GROUP BY CAST(j.value AS INTEGER)"
    )
    """(tag id, users whose tag_ids hold it) over the whole of user_tags."""
    JOURNAL_UPSERT_SQL: ClassVar[str] = ""
    """Write journal entries. A run writes a user once (a retried batch skips the users it
    journaled already); should an entry exist after all, the new one replaces it."""
    DELETE_ROWS_SQL: ClassVar[str] = "DELETE FROM user_tags WHERE user_id IN ({ids})"
    JSON_HAS_SQL: ClassVar[str] = ""
    """Whether the JSON id array in column {column} holds the tag id bound as `:tag` (text)."""
    UNLOCKED_READS_ISOLATION: ClassVar[str | None] = None
    """An isolation level under which INSERT ... SELECT reads its source without locking it
    (None: the database has one writer at a time anyway)."""
    RUN_FENCE_SQL: ClassVar[str] = "SELECT status FROM tag_runs WHERE run_id = ?"
    """A run's status, read so that it cannot change before the transaction ends (SQLite's
    write transactions hold the database; MySQL takes a shared lock on the record)."""
    CLOCK_SQL: ClassVar[str] = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
    """The database's current UTC time, as text or a naive datetime."""

    def prepare_url(self, url: sa.URL) -> sa.URL:
        return url

    def engine_kwargs(self, bulk_load: bool = False) -> dict[str, Any]:
        """Engine settings; `bulk_load` only for the connection that loads local files."""
        return {}

    def install_hooks(self, engine: sa.Engine) -> None:
        """Attach connection events the dialect needs."""

    def lock_wait_sql(self, seconds: int) -> str:
        """The statement that makes a session wait at most `seconds` for a lock."""
        return f"SET SESSION innodb_lock_wait_timeout = {max(1, int(seconds))}"

    def placeholders(self, count: int) -> str:
        return ", ".join(["%s"] * count)

    def timestamp_param(self, value: datetime) -> object:
        return to_utc_naive(value)

    def retry_kind(self, exc: BaseException) -> Retry | None:
        return None

    def same_stamp(self, stored: object, stamp: object) -> bool:
        """Whether a stored created/updated_time is the write time `stamp` (as bound)."""
        if isinstance(stored, bytes):
            stored = stored.decode()
        return stored == stamp

    def read_rows(
        self, cursor: Any, lo_id: int, hi_id: int, user_ids: list[str] | None
    ) -> pa.Table:
        """Rows with lo_id <= id <= hi_id (optionally only `user_ids`) as EXISTING_ROWS_SCHEMA."""
        found: list[tuple[Any, Any, Any]] = []
        if user_ids is None:
            cursor.execute(self.READ_RANGE_SQL.format(filter=""), (lo_id, hi_id))
            found.extend(cursor.fetchall())
        for chunk in chunks(sorted(set(user_ids or ())), self.MAX_IN_PARAMS - 2):
            user_filter = f" AND user_id IN ({self.placeholders(len(chunk))})"
            cursor.execute(self.READ_RANGE_SQL.format(filter=user_filter), (lo_id, hi_id, *chunk))
            found.extend(cursor.fetchall())
        columns = list(zip(*found, strict=True)) if found else [(), (), ()]
        users, ids, details = ([as_text(v) for v in column] for column in columns)
        if not self.DIGESTS_IN_SQL:
            details = [details_digest(d) for d in details]
        arrays = [pa.array(column, pa.string()) for column in (users, ids, details)]
        return pa.Table.from_arrays(arrays, schema=EXISTING_ROWS_SCHEMA)

    def insert_new_rows(
        self, cursor: Any, rows: pa.Table, stamp: object, run_id: str | None = None
    ) -> int:
        """Insert (user_id, tag_ids, tag_details) rows stamped `stamp`, skipping users that
        have a row; return how many were inserted. With `run_id`, journal them when every row
        was inserted (else the caller rolls back and merges them one by one). The caller
        commits."""
        cursor.execute(self.BEGIN_WRITE_SQL)
        values = list(zip(*(rows.column(i).to_pylist() for i in range(3)), strict=True))
        cursor.executemany(self.INSERT_NEW_SQL, [(*row, stamp, stamp) for row in values])
        inserted = int(cursor.rowcount)
        if run_id is not None and inserted == len(values):
            entries = [
                (run_id, uid, stamp, None, None, None, ids, text_md5(details), ids, "[]")
                for uid, ids, details in values
            ]
            cursor.executemany(self.JOURNAL_UPSERT_SQL, entries)
        return inserted

    @contextmanager
    def migration_lock(self, conn: sa.Connection) -> Iterator[None]:
        yield

    @contextmanager
    def database_lock(self, conn: sa.Connection, purpose: str, busy: str) -> Iterator[None]:
        """Held (outside any transaction) while a check-then-write must not interleave with
        another (the job queue's limit, unique tag and category names). SQLite needs none: its
        write transactions (BEGIN IMMEDIATE) already come one at a time. `busy`: the error's
        text when the lock cannot be had."""
        yield


class SQLiteAdapter(StoreAdapter):
    """The embedded default: one file, one writer at a time (WAL lets readers continue)."""

    NAME = "sqlite"
    MAX_CONCURRENT_WRITERS = 1
    MAX_IN_PARAMS = 900
    MIGRATES_ON_FIRST_USE = True
    BUSY_TIMEOUT_SECONDS: ClassVar[float] = 60.0
    BEGIN_WRITE_SQL = "BEGIN IMMEDIATE"
    SELECT_FOR_MERGE_SQL = StoreAdapter.SELECT_FOR_READ_SQL  # BEGIN IMMEDIATE locks the file
    UPSERT_SQL = f"""
        INSERT INTO user_tags ({_UPSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(user_id) DO UPDATE SET
            updated_time = CASE
                WHEN user_tags.tag_ids IS excluded.tag_ids
                 AND user_tags.tag_details IS excluded.tag_details
                THEN user_tags.updated_time ELSE excluded.updated_time END,
            tag_ids = excluded.tag_ids,
            tag_details = excluded.tag_details
    """
    INSERT_NEW_SQL = f"INSERT OR IGNORE INTO user_tags ({_UPSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
    JOURNAL_UPSERT_SQL = (
        f"INSERT OR REPLACE INTO user_tags_journal ({_JOURNAL_LIST})"
        f" VALUES ({', '.join('?' * len(JOURNAL_COLUMNS))})"
    )
    JSON_HAS_SQL = "EXISTS (SELECT 1 FROM json_each({column}) WHERE value = CAST(:tag AS INTEGER))"
    READ_RANGE_SQL = (
        "SELECT user_id, tag_ids, tag_details FROM user_tags WHERE id >= ? AND id <= ?{filter}"
        " ORDER BY id"
    )

    def prepare_url(self, url: sa.URL) -> sa.URL:
        database = url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return url

    def engine_kwargs(self, bulk_load: bool = False) -> dict[str, Any]:
        return {"connect_args": {"timeout": self.BUSY_TIMEOUT_SECONDS}}

    def install_hooks(self, engine: sa.Engine) -> None:
        # pysqlite's own transaction handling defers BEGIN and breaks read-then-write
        # transactions; we switch it off and begin IMMEDIATE ourselves (SQLAlchemy's recipe).
        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, record: Any) -> None:
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    def lock_wait_sql(self, seconds: int) -> str:
        return f"PRAGMA busy_timeout = {max(1, int(seconds)) * 1000}"

    def placeholders(self, count: int) -> str:
        return ", ".join(["?"] * count)

    def timestamp_param(self, value: datetime) -> object:
        # The text SQLAlchemy's SQLite DateTime stores and parses back.
        return to_utc_naive(value).strftime("%Y-%m-%d %H:%M:%S.%f")

    def retry_kind(self, exc: BaseException) -> Retry | None:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return Retry.ROLLBACK
        return None


class MySQLAdapter(StoreAdapter):
    """MySQL 8 and MariaDB 10.11: only SQL both accept (VALUES() in ODKU, no row alias)."""

    NAME = "mysql"
    MAX_CONCURRENT_WRITERS = None
    CLOCK_SQL = "SELECT UTC_TIMESTAMP(6)"
    UNLOCKED_READS_ISOLATION = "READ COMMITTED"
    RUN_FENCE_SQL = "SELECT status FROM tag_runs WHERE run_id = %s LOCK IN SHARE MODE"
    MIGRATES_ON_FIRST_USE = False
    BEGIN_WRITE_SQL = "START TRANSACTION"
    SELECT_FOR_MERGE_SQL = StoreAdapter.SELECT_FOR_READ_SQL + " FOR UPDATE"
    # Assignments run left to right: the updated_time guard must see the old content.
    UPSERT_SQL = f"""
        INSERT INTO user_tags ({_UPSERT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)
        ON DUPLICATE KEY UPDATE
            updated_time = IF(tag_ids <=> VALUES(tag_ids) AND tag_details <=> VALUES(tag_details),
                              updated_time, VALUES(updated_time)),
            tag_ids = VALUES(tag_ids),
            tag_details = VALUES(tag_details)
    """
    INSERT_NEW_SQL = f"INSERT IGNORE INTO user_tags ({_UPSERT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)"
    JOURNAL_UPSERT_SQL = (
        f"INSERT INTO user_tags_journal ({_JOURNAL_LIST})"
        f" VALUES ({', '.join(['%s'] * len(JOURNAL_COLUMNS))}) ON DUPLICATE KEY UPDATE "
        + ", ".join(f"{c} = VALUES({c})" for c in JOURNAL_COLUMNS[2:])
    )
    READ_RANGE_SQL = (
        "SELECT user_id, tag_ids, SHA1(tag_details) FROM user_tags"
        " WHERE id >= %s AND id <= %s{filter} ORDER BY id"
    )
    DIGESTS_IN_SQL = True
    HAS_TAG_SQL = "JSON_CONTAINS(user_tags.tag_ids, CAST(:tag_id AS CHAR))"
    TAG_COUNTS_SQL = (
        "SELECT j.tag_id, COUNT(*) FROM user_tags,"
        " JSON_TABLE(user_tags.tag_ids, '$[*]' COLUMNS (tag_id BIGINT PATH '$')) j"
        " GROUP BY j.tag_id"
    )
    JSON_HAS_SQL = "JSON_CONTAINS({column}, :tag)"
    ID_BUCKETS_SQL = (
        "SELECT (id - {low}) DIV {width} AS bucket, COUNT(*) FROM user_tags"
        " GROUP BY bucket ORDER BY bucket"
    )
    PACKED_READ_IDS: ClassVar[int] = 50_000
    PACKED_READ_MAX_BYTES: ClassVar[int] = 64 << 20
    """Ids and bytes per packed read; a longer text (or one past the server's
    max_allowed_packet) is read again in halves."""
    # A whole id range as one CSV text (digest first, then the quoted user_id and tag_ids):
    # the server concatenates in C and pyarrow parses, where fetching a million rows one by
    # one costs PyMySQL seconds of Python.
    PACKED_READ_SQL = """
        SELECT COUNT(*), CAST(GROUP_CONCAT(
            IFNULL(SHA1(tag_details), ''), ',"', REPLACE(user_id, '"', '""'), '","',
            REPLACE(tag_ids, '"', '""'), '"' SEPARATOR '\n') AS BINARY)
        FROM user_tags WHERE id >= %s AND id <= %s
    """
    BULK_CHUNK_ROWS = 50_000
    LOAD_NEW_SQL = """
        LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE user_tags CHARACTER SET utf8mb4
        FIELDS TERMINATED BY ',' ENCLOSED BY '"' ESCAPED BY '' LINES TERMINATED BY '\\n'
        (user_id, tag_ids, tag_details) SET created_time = %s, updated_time = %s
    """
    LOAD_JOURNAL_SQL = """
        LOAD DATA LOCAL INFILE %s INTO TABLE user_tags_journal CHARACTER SET utf8mb4
        FIELDS TERMINATED BY ',' ENCLOSED BY '"' ESCAPED BY '' LINES TERMINATED BY '\\n'
        (user_id, @ids, @details) SET run_id = %s, written_at = %s, after_ids = @ids,
        after_details_md5 = MD5(@details), entered = @ids, exited = '[]'
    """
    """The journal of a bulk insert, from the same file: every row new (before = absent)."""
    LOAD_REFUSED_CODES: ClassVar[frozenset[int]] = frozenset({1148, 2068, 3948, 4166})
    """The server or client refuses LOAD DATA LOCAL (MySQL 8 by default; 4166 is MariaDB)."""
    load_refused: ClassVar[bool] = False
    LOCK_CONFLICT_CODES: ClassVar[frozenset[int]] = frozenset({1205, 1213, 1467})
    """Lock wait timeout, deadlock, and 1467 ("Failed to read auto-increment value"): how
    MariaDB fails the victim of a deadlock on the table's AUTO-INC lock (a bulk insert of new
    rows holding it while it waits for a gap an upserting writer locked)."""
    CONNECTION_LOST_CODES: ClassVar[frozenset[int]] = frozenset(
        {2003, 2006, 2013, 2014, 2055, 1053, 1927, 4031}
    )
    MIGRATION_LOCK: ClassVar[str] = "tagsys_migrate"
    MIGRATION_LOCK_TIMEOUT_SECONDS: ClassVar[int] = 120

    def prepare_url(self, url: sa.URL) -> sa.URL:
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        return url

    def engine_kwargs(self, bulk_load: bool = False) -> dict[str, Any]:
        return {
            "pool_pre_ping": True,
            "pool_recycle": 1800,
            # REPEATABLE READ explicitly: its gap locks are what keep two writers from both
            # inserting a user neither saw (READ COMMITTED would lose one of the two updates).
            "isolation_level": "REPEATABLE READ",
            "connect_args": {
                "connect_timeout": 10,
                "init_command": "SET time_zone = '+00:00'",
                # Reading client files is a privilege: only the writer's bulk-load engine has it.
                "local_infile": bulk_load,
            },
        }

    def read_rows(
        self, cursor: Any, lo_id: int, hi_id: int, user_ids: list[str] | None
    ) -> pa.Table:
        if user_ids is not None:  # a listed run's few users: plain rows
            return super().read_rows(cursor, lo_id, hi_id, user_ids)
        cursor.execute(
            "SET SESSION group_concat_max_len = LEAST(@@max_allowed_packet - 1024, %s)",
            (self.PACKED_READ_MAX_BYTES,),
        )
        cursor.execute("SELECT @@group_concat_max_len")
        limit = int(cursor.fetchone()[0])
        step = self.PACKED_READ_IDS
        parts = [
            part
            for lo in range(lo_id, hi_id + 1, step)
            for part in self._read_packed(cursor, lo, min(hi_id, lo + step - 1), limit)
        ]
        return pa.concat_tables(parts) if parts else EXISTING_ROWS_SCHEMA.empty_table()

    def _read_packed(self, cursor: Any, lo_id: int, hi_id: int, limit: int) -> list[pa.Table]:
        cursor.execute(self.PACKED_READ_SQL, (lo_id, hi_id))
        count, text = cursor.fetchone()
        if not count:
            return []
        if text is None or len(text) >= limit:  # GROUP_CONCAT cut it at the limit
            if lo_id == hi_id:
                raise StoreError(
                    f"the user_tags row with id {lo_id} is too large to read ({limit} bytes at "
                    "most; the server's max_allowed_packet bounds it): raise max_allowed_packet"
                )
            middle = (lo_id + hi_id) // 2
            return self._read_packed(cursor, lo_id, middle, limit) + self._read_packed(
                cursor, middle + 1, hi_id, limit
            )
        table = _parse_packed(text)
        if table.num_rows != count:
            raise StoreError(
                f"reading user_tags ids {lo_id}..{hi_id} returned {table.num_rows} of "
                f"{count} rows: a row with a NULL user_id or tag_ids?"
            )
        return [table]

    def insert_new_rows(
        self, cursor: Any, rows: pa.Table, stamp: object, run_id: str | None = None
    ) -> int:
        """One LOAD DATA LOCAL ... IGNORE (the database's bulk path), and the journal from the
        same file; plain inserts when the server refuses local files."""
        if type(self).load_refused:
            return super().insert_new_rows(cursor, rows, stamp, run_id)
        import pymysql

        with _csv_file(rows) as path:
            cursor.execute(self.BEGIN_WRITE_SQL)
            try:
                cursor.execute(self.LOAD_NEW_SQL, (path, stamp, stamp))
            except pymysql.err.MySQLError as exc:
                if not exc.args or exc.args[0] not in self.LOAD_REFUSED_CODES:
                    raise
                log.warning(
                    "the server refuses LOAD DATA LOCAL (%s): inserting new rows with INSERT", exc
                )
                type(self).load_refused = True
                cursor.connection.rollback()
                return super().insert_new_rows(cursor, rows, stamp, run_id)
            inserted = int(cursor.rowcount)
            self._refuse_lossy_load(cursor, rows.num_rows - inserted)
            if run_id is not None and inserted == rows.num_rows:
                cursor.execute(self.LOAD_JOURNAL_SQL, (path, run_id, stamp))
                self._refuse_lossy_load(cursor, 0)
        return inserted

    def _refuse_lossy_load(self, cursor: Any, skipped: int) -> None:
        """IGNORE skips rows of users that have one (one warning 1062 each), but it would also
        store a truncated or converted value with a mere warning. The server lists at most
        max_error_count warnings, so the count decides: any warning beyond one per skipped row
        fails the load."""
        warnings = int(cursor.warning_count)
        if warnings == skipped:
            return
        cursor.execute("SHOW WARNINGS")
        problems = [f"{code}: {text}" for _, code, text in cursor.fetchall() if code != 1062]
        listed = "; ".join(problems[:5]) or "the first ones the server lists are duplicate keys"
        raise StoreError(
            f"a bulk insert of new user_tags rows was rolled back: {listed} ({warnings} "
            f"warnings for {skipped} rows skipped as existing; a user id longer than the "
            "user_id column, or text the table's charset cannot hold?)"
        )

    def retry_kind(self, exc: BaseException) -> Retry | None:
        import pymysql

        if isinstance(exc, pymysql.err.InterfaceError):
            return Retry.RECONNECT
        if not isinstance(exc, pymysql.err.MySQLError) or not exc.args:
            return None
        code = exc.args[0]
        if code in self.LOCK_CONFLICT_CODES:
            return Retry.ROLLBACK
        if code in self.CONNECTION_LOST_CODES:
            return Retry.RECONNECT
        return None

    @contextmanager
    def migration_lock(self, conn: sa.Connection) -> Iterator[None]:
        busy = (
            f"another process has been migrating this database for over "
            f"{self.MIGRATION_LOCK_TIMEOUT_SECONDS}s (lock {self.MIGRATION_LOCK!r}): "
            "wait for it to finish, then run `--mode migrate` again"
        )
        with _named_lock(conn, self.MIGRATION_LOCK, self.MIGRATION_LOCK_TIMEOUT_SECONDS, busy):
            yield

    @contextmanager
    def database_lock(self, conn: sa.Connection, purpose: str, busy: str) -> Iterator[None]:
        # Lock names are server-wide: one per database, at most 64 characters.
        database = conn.engine.url.database or ""
        name = f"tagsys_{purpose}_{hashlib.md5(database.encode()).hexdigest()}"
        # Between transactions: the caller's starts after the lock, with a fresh view.
        with _named_lock(conn, name, LOCK_TIMEOUT_SECONDS, busy, commit=True):
            yield


@contextmanager
def _named_lock(
    conn: sa.Connection, name: str, timeout: int, busy: str, *, commit: bool = False
) -> Iterator[None]:
    """MySQL's named lock `name` (server-wide) held on `conn`; StoreError `busy` after
    `timeout` seconds. `commit` ends the statement's transaction after taking and releasing."""
    got = conn.execute(
        sa.text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": timeout}
    ).scalar()
    if commit:
        conn.commit()
    if got != 1:
        raise StoreError(busy)
    try:
        yield
    finally:
        conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        if commit:
            conn.commit()


def details_digest(text: str | None) -> str | None:
    """The SHA-1 (hex) of a tag_details text as MySQL's SHA1() gives it: what a run compares
    stored details by. SHA-1, not MD5: MariaDB's MD5() took 1.0 s of server CPU per 1M rows of
    ~600 bytes here, SHA1() 0.2 s (a plain scan 1.0 s), and the JVM's is as fast."""
    return None if text is None else hashlib.sha1(text.encode()).hexdigest()


def text_md5(text: str | None) -> str | None:
    """The MD5 (hex) of a text as MySQL's MD5() gives it: the journal keeps a row's after
    details as this digest (the rows hold the text itself)."""
    return None if text is None else hashlib.md5(text.encode()).hexdigest()


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def as_text(value: str | bytes | None) -> str | None:
    """A text column's value (drivers return bytes for some column types)."""
    return value.decode() if isinstance(value, bytes) else value


def _parse_packed(text: bytes) -> pa.Table:
    """PACKED_READ_SQL's text as EXISTING_ROWS_SCHEMA (an unquoted empty digest is NULL)."""
    names = ["details_digest", "user_id", "tag_ids"]
    table = packed_csv(text, pa.schema([(n, pa.string()) for n in names]))
    return table.select(EXISTING_ROWS_SCHEMA.names)


def packed_csv(text: bytes, schema: pa.Schema) -> pa.Table:
    """A server-packed CSV text (GROUP_CONCAT of quoted fields, one row a line) as `schema`:
    an unquoted empty field is NULL, a quoted one the empty string."""
    import pyarrow.csv as csv

    return csv.read_csv(
        pa.py_buffer(text),
        read_options=csv.ReadOptions(column_names=schema.names, use_threads=False),
        parse_options=csv.ParseOptions(newlines_in_values=True),
        convert_options=csv.ConvertOptions(
            column_types={f.name: f.type for f in schema},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


@contextmanager
def _csv_file(rows: pa.Table) -> Iterator[str]:
    """`rows` as a headerless CSV file (every value quoted, quotes doubled), removed after use."""
    import pyarrow.csv as csv

    handle, path = tempfile.mkstemp(prefix="tagsys-new-rows-", suffix=".csv")
    os.close(handle)
    try:
        csv.write_csv(rows, path, csv.WriteOptions(include_header=False, quoting_style="all_valid"))
        yield path
    finally:
        os.unlink(path)


_ADAPTERS: dict[str, type[StoreAdapter]] = {
    "sqlite": SQLiteAdapter,
    "mysql": MySQLAdapter,
    "mariadb": MySQLAdapter,
}


def adapter_for(url: sa.URL) -> StoreAdapter:
    backend = url.get_backend_name()
    try:
        return _ADAPTERS[backend]()
    except KeyError:
        raise StoreError(
            f"unsupported store URL scheme {backend!r}: use sqlite:///PATH or "
            "mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
