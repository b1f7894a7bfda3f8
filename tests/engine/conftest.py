from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tagsys.api import TagSystemAPI
from tagsys.settings import load_settings
from tests.engine.lakes import SHOP_TAGS, build_shop_lake, load_tags

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MakeApi = Callable[..., TagSystemAPI]


@pytest.fixture
def shop_lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    build_shop_lake(root)
    return root


@pytest.fixture
def make_api(spark: SparkSession, tmp_path: Path) -> Iterator[MakeApi]:
    made: list[TagSystemAPI] = []

    def make(db_url: str, lake: Path, **overrides: object) -> TagSystemAPI:
        settings = load_settings(
            "local", db_url=db_url, lake_uri=str(lake), data_dir=tmp_path / "data", **overrides
        )
        api = TagSystemAPI(settings=settings, spark=spark)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def shop(db_url: str, shop_lake: Path, make_api: MakeApi) -> TagSystemAPI:
    load_tags(db_url, SHOP_TAGS)
    return make_api(db_url, shop_lake)
