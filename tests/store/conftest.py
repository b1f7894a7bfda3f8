"""Store fixtures: the same tests on a SQLite file and on a fresh MariaDB database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tagsys.store import migrate, writer
from tagsys.store.db import create_store_engine


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def store_url(request: pytest.FixtureRequest) -> str:
    """An empty store of either kind."""
    fixture = "sqlite_url" if request.param == "sqlite" else "mariadb_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def migrated_url(store_url: str) -> str:
    migrate.upgrade(store_url)
    return store_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _close_writer_engines() -> Iterator[None]:
    yield
    writer.dispose_engines()
