"""Service tests: a demo lake and stores with the seed's tags, module-scoped (a service
process takes a Spark start, so each module starts as few as it can)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tagsys.demo.loader import load_seed_tags, write_demo_lake
from tests.conftest import MYSQL_SERVER_URL
from tests.service.support import AS_OF


def make_lake(root: Path, users: int) -> Path:
    write_demo_lake(str(root), users, AS_OF, seed=7)
    return root


def make_mariadb() -> str:
    name = f"tagsys_svc_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(MYSQL_SERVER_URL)
    with server.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    server.dispose()
    return f"{MYSQL_SERVER_URL}/{name}?charset=utf8mb4"


def drop_mariadb(url: str) -> None:
    name = sa.make_url(url).database
    server = sa.create_engine(MYSQL_SERVER_URL)
    with server.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    server.dispose()


@pytest.fixture(scope="module")
def seeded_mariadb() -> Iterator[str]:
    """A MariaDB database migrated and loaded with the seed's eight tags."""
    from tagsys.store.migrate import upgrade

    url = make_mariadb()
    try:
        upgrade(url)
        load_seed_tags(url)
        yield url
    finally:
        drop_mariadb(url)


def seeded_sqlite(folder: Path) -> str:
    url = f"sqlite:///{folder / 'tagsys.db'}"
    load_seed_tags(url)
    return url
