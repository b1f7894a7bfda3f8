"""Tag management against a real store (SQLite file, fresh MariaDB database) and a small lake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tagsys.lake.catalog import LakeCatalog
from tagsys.management.manager import Actor, TagManager
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tests.engine.lakes import build_shop_lake

ALICE = Actor("alice", "first cut")
BOB = Actor("bob")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    build_shop_lake(root)
    return root


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def store(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    url = str(request.getfixturevalue(f"{request.param}_url"))
    upgrade(url)
    engine = create_store_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def manager(store: sa.Engine, lake: Path) -> TagManager:
    catalog = LakeCatalog(str(lake))
    manager = TagManager(store, catalog.schema)
    manager.create_category(ALICE, "value", "what users are worth")
    manager.create_category(ALICE, "people")
    return manager
