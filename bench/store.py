"""The benchmark's store: a fresh database (or SQLite file), its tags, and side tables.

Side tables (`bench_naive`, `bench_bulk`, `bench_stage`) have the shape of `user_tags` and
live in the same database, so every writer pays the same constraints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.rulegen import BenchTag
from tagsys.demo import loader as demo_loader
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tagsys.tagsets import TagInfo, details_json, ids_json

NAIVE_TABLE = "bench_naive"
BULK_TABLE = "bench_bulk"
STAGE_TABLE = "bench_stage"


@dataclass(frozen=True)
class Checksum:
    """Order-independent digest of per-user sorted tag arrays (users with no tag left out)."""

    users: int
    tags: int
    digest: int

    @classmethod
    def of(cls, rows: Iterable[tuple[str, Sequence[int]]]) -> Checksum:
        users = tags = digest = 0
        for user_id, ids in rows:
            if not ids:
                continue
            users += 1
            tags += len(ids)
            digest += row_hash(user_id, ids)
        return cls(users, tags, digest)


def row_hash(user_id: str, ids: Sequence[int]) -> int:
    text = f"{user_id}:{','.join(str(i) for i in sorted(ids))}"
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16)


def is_mysql(db_url: str) -> bool:
    return sa.make_url(db_url).get_backend_name() in ("mysql", "mariadb")


def recreate(db_url: str) -> None:
    """Drop and create the bench database (or delete the SQLite file), then migrate it."""
    drop(db_url)
    url = sa.make_url(db_url)
    if is_mysql(db_url):
        server = sa.create_engine(url.set(database=""))
        try:
            with server.begin() as conn:
                conn.execute(
                    sa.text(
                        f"CREATE DATABASE `{url.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    )
                )
        finally:
            server.dispose()
    upgrade(db_url)


def drop(db_url: str) -> None:
    url = sa.make_url(db_url)
    if not is_mysql(db_url):
        if url.database:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(url.database + suffix).unlink(missing_ok=True)
        return
    if not url.database or not url.database.startswith("tagsys_bench"):
        raise ValueError(
            f"refusing to drop database {url.database!r}: bench databases start with tagsys_bench"
        )
    server = sa.create_engine(url.set(database=""))
    try:
        with server.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    finally:
        server.dispose()


def load_tags(db_url: str, tags: Sequence[BenchTag]) -> None:
    demo_loader.load_tags(db_url, tags)


def set_rules(db_url: str, tag_id: int, rules: list[dict[str, Any]]) -> None:
    engine = create_store_engine(db_url)
    try:
        repository.replace_rules(bind=engine, tag_id=tag_id, rules=rules)
    finally:
        engine.dispose()


def execute(db_url: str, *statements: str) -> None:
    engine = create_store_engine(db_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def empty_table(db_url: str, table: str) -> None:
    execute(db_url, f"TRUNCATE TABLE {table}" if is_mysql(db_url) else f"DELETE FROM {table}")


def create_side_tables(db_url: str) -> None:
    """`bench_naive` and `bench_bulk` shaped like user_tags; `bench_stage` (MySQL) keyless."""
    if is_mysql(db_url):
        execute(
            db_url,
            f"CREATE TABLE {NAIVE_TABLE} LIKE user_tags",
            f"CREATE TABLE {BULK_TABLE} LIKE user_tags",
            f"CREATE TABLE {STAGE_TABLE} (user_id VARCHAR(100) NOT NULL, tag_ids LONGTEXT, "
            "tag_details LONGTEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        )
        return
    engine = create_store_engine(db_url)
    try:
        with engine.begin() as conn:
            ddl = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE type='table' AND name='user_tags'")
            ).scalar_one()
            conn.execute(sa.text(ddl.replace("user_tags", NAIVE_TABLE, 1)))
    finally:
        engine.dispose()


def read_tag_sets(db_url: str, table: str = "user_tags") -> Iterator[tuple[str, list[int]]]:
    """(user_id, tag ids) of every row of a user_tags-shaped table, streamed."""
    engine = create_store_engine(db_url)
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=20_000).execute(
                sa.text(f"SELECT user_id, tag_ids FROM {table}")
            )
            for user_id, text in result:
                yield user_id, json.loads(text)
    finally:
        engine.dispose()


def table_checksum(db_url: str, table: str = "user_tags") -> Checksum:
    return Checksum.of(read_tag_sets(db_url, table))


def final_rows(
    rows: Iterable[tuple[str, Sequence[int]]], definitions: dict[int, TagInfo]
) -> Iterator[tuple[str, str, str]]:
    """(user_id, tag_ids JSON, tag_details JSON) as the product stores them, for non-empty sets."""
    cache: dict[tuple[int, ...], tuple[str, str]] = {}
    for user_id, ids in rows:
        if not ids:
            continue
        key = tuple(ids)
        if key not in cache:
            details = {t: definitions[t].as_detail() for t in key}
            cache[key] = (ids_json(key), details_json(details))
        yield (user_id, *cache[key])


def definitions_of(tags: Sequence[BenchTag]) -> dict[int, TagInfo]:
    return {t.tag_id: TagInfo(t.tag_name, t.tag_category) for t in tags}
