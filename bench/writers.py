"""Baseline writers: the seed's plain executemany upsert, and MySQL's bulk-load limit."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import pymysql
import sqlalchemy as sa

from bench.store import BULK_TABLE, STAGE_TABLE, is_mysql

NAIVE_BATCH = 2000

_MYSQL_UPSERT = """
    INSERT INTO {table} (user_id, tag_ids, tag_details, created_time, updated_time)
    VALUES (%s, %s, %s, %s, %s)
    ON DUPLICATE KEY UPDATE
        updated_time = IF(tag_ids <=> VALUES(tag_ids), updated_time, VALUES(updated_time)),
        tag_ids = VALUES(tag_ids), tag_details = VALUES(tag_details)
"""
_SQLITE_UPSERT = """
    INSERT INTO {table} (user_id, tag_ids, tag_details, created_time, updated_time)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT(user_id) DO UPDATE SET tag_ids = excluded.tag_ids,
        tag_details = excluded.tag_details, updated_time = excluded.updated_time
"""


def _chunks(
    rows: Iterable[tuple[str, str, str]], size: int
) -> Iterator[list[tuple[str, str, str]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def executemany_upsert(db_url: str, table: str, rows: Iterable[tuple[str, str, str]]) -> int:
    """The seed's write: every row, plain executemany upserts, one commit per batch."""
    from tagsys.store.db import create_store_engine

    mysql = is_mysql(db_url)
    sql = (_MYSQL_UPSERT if mysql else _SQLITE_UPSERT).format(table=table)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    stamp: object = now if mysql else now.isoformat(sep=" ")
    engine = create_store_engine(db_url)
    written = 0
    try:
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            for chunk in _chunks(rows, NAIVE_BATCH):
                cursor.executemany(sql, [(*row, stamp, stamp) for row in chunk])
                conn.commit()
                written += len(chunk)
            cursor.close()
        finally:
            conn.close()
    finally:
        engine.dispose()
    return written


def write_tsv(path: Path, rows: Iterable[tuple[str, str, str]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            out.write("\t".join(row))
            out.write("\n")
            count += 1
    return count


def _pymysql_connection(db_url: str) -> pymysql.connections.Connection:
    url = sa.make_url(db_url)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=url.database,
        charset="utf8mb4",
        local_infile=True,
        autocommit=False,
    )


def bulk_load(db_url: str, tsv: Path) -> dict[str, float]:
    """LOAD DATA LOCAL INFILE into a keyless staging table, then one INSERT ... SELECT ...
    ON DUPLICATE KEY UPDATE into the empty user_tags-shaped table. Seconds per step."""
    conn = _pymysql_connection(db_url)
    try:
        cursor = conn.cursor()
        cursor.execute(f"TRUNCATE TABLE {STAGE_TABLE}")
        cursor.execute(f"TRUNCATE TABLE {BULK_TABLE}")
        start = time.perf_counter()
        cursor.execute(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {STAGE_TABLE} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '' LINES TERMINATED BY '\\n' "
            "(user_id, tag_ids, tag_details)",
            (str(tsv),),
        )
        conn.commit()
        loaded = time.perf_counter()
        cursor.execute(
            f"INSERT INTO {BULK_TABLE} (user_id, tag_ids, tag_details, created_time, updated_time) "
            f"SELECT s.user_id, s.tag_ids, s.tag_details, UTC_TIMESTAMP(), UTC_TIMESTAMP() "
            f"FROM {STAGE_TABLE} s ON DUPLICATE KEY UPDATE "
            f"{BULK_TABLE}.updated_time = IF({BULK_TABLE}.tag_ids <=> s.tag_ids, "
            f"{BULK_TABLE}.updated_time, UTC_TIMESTAMP()), "
            f"{BULK_TABLE}.tag_ids = s.tag_ids, {BULK_TABLE}.tag_details = s.tag_details"
        )
        conn.commit()
        merged = time.perf_counter()
        cursor.close()
    finally:
        conn.close()
    return {"load": loaded - start, "merge": merged - loaded, "total": merged - start}


def server_version(db_url: str) -> str:
    if not is_mysql(db_url):
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    conn = _pymysql_connection(db_url)
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT VERSION()")
        (version,) = cursor.fetchone()
        return str(version)
    finally:
        conn.close()
