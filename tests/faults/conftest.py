"""Fixtures of the fault-injection suite: a lake of a few thousand users, a template store
with an earlier run's rows (so a run both inserts and updates), the clean-run oracle, and
the per-kind injection counter written to last_counts.json at the end of the session."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tagsys.api import TagSystemAPI
from tagsys.engine.plan import RunRequest
from tagsys.settings import load_settings
from tagsys.store import writer
from tests.conftest import MYSQL_SERVER_URL
from tests.engine.lakes import AS_OF, SHOP_TAGS, build_shop_lake, load_tags
from tests.faults.private_server import PrivateMariaDB
from tests.faults.support import (
    CREATED,
    InjectionCounter,
    Server,
    Table,
    server_of,
    snapshot,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

USERS = 3000
"""Lake users: enough for a write phase of about a second with WRITE_BATCH_SIZE."""
WRITE_BATCH_SIZE = 25
PREP_AS_OF = date(2024, 8, 15)
"""The template's rows come from a run at this date: a run at AS_OF changes most of them."""
COUNTS_FILE = Path(__file__).with_name("last_counts.json")

MakeApi = Callable[..., TagSystemAPI]
Template = Callable[[Server], str]
CleanOracle = Callable[[Server, RunRequest], Table]


@pytest.fixture(scope="session")
def counter() -> Iterator[InjectionCounter]:
    found = InjectionCounter()
    yield found
    if found.counts:
        found.write(COUNTS_FILE)


@pytest.fixture(scope="session")
def shared_server() -> Server:
    return server_of(MYSQL_SERVER_URL)


@pytest.fixture(scope="session")
def fault_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fault-lake") / "lake"
    build_shop_lake(root, users=USERS)
    return root


@pytest.fixture(scope="session")
def make_api(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> MakeApi:
    data = tmp_path_factory.mktemp("fault-data")

    def make(db_url: str, lake: Path, **overrides: object) -> TagSystemAPI:
        overrides.setdefault("write_batch_size", WRITE_BATCH_SIZE)
        settings = load_settings(
            "local", db_url=db_url, lake_uri=str(lake), data_dir=data, **overrides
        )
        return TagSystemAPI(settings=settings, spark=spark)

    return make


@pytest.fixture(scope="session", autouse=True)
def _drop_leftover_databases() -> Iterator[None]:
    """Tests clone working databases freely; none outlives the session (on the shared server
    they would pile up run after run)."""
    yield
    for server, name in list(CREATED):
        with contextlib.suppress(Exception):  # a private server may be gone already
            server.drop(name)


@pytest.fixture(scope="session")
def template(make_api: MakeApi, fault_lake: Path) -> Iterator[Template]:
    """`template(server)`: the name of a database on `server` holding the tags and the rows of
    an earlier run (PREP_AS_OF), a third of them deleted and all stamped in 2020; built once
    per server. Tests reset their databases from it."""
    made: dict[Server, str] = {}

    def get(server: Server) -> str:
        if server not in made:
            name = server.create("tagsys_fault_tmpl")
            url = server.db_url(name)
            load_tags(url, SHOP_TAGS)
            api = make_api(url, fault_lake)
            summary = api.run(api.request("task-all", as_of=PREP_AS_OF))
            assert summary.succeeded, summary.render()
            with server.connect(name) as conn, conn.cursor() as cur:
                cur.execute("DELETE FROM user_tags WHERE MOD(id, 3) = 0")
                cur.execute(
                    "UPDATE user_tags SET created_time = '2020-01-01 00:00:00.123456',"
                    " updated_time = '2020-01-02 00:00:00.654321'"
                )
                cur.execute("DELETE FROM tag_runs")
            made[server] = name
        return made[server]

    yield get
    writer.dispose_engines()
    for server, name in made.items():
        with contextlib.suppress(Exception):  # a private server may be gone already
            server.drop(name)


@pytest.fixture(scope="session")
def clean_table(make_api: MakeApi, fault_lake: Path, template: Template) -> CleanOracle:
    """`clean_table(server, request)`: user_tags after a clean run of `request` on a fresh copy
    of the template (cached per server and request)."""
    cache: dict[tuple[Server, RunRequest], Table] = {}

    def get(server: Server, request: RunRequest) -> Table:
        key = (server, request)
        if key not in cache:
            name = server.clone(template(server))
            try:
                api = make_api(server.db_url(name), fault_lake)
                summary = api.run(request)
                assert summary.succeeded, summary.render()
                cache[key] = snapshot(server, name)
            finally:
                server.drop(name)
        return cache[key]

    return get


def task_all() -> RunRequest:
    return RunRequest(mode="task-all", as_of=AS_OF)


@pytest.fixture(scope="session")
def private_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMariaDB]:
    """A private MariaDB for the restart tests; stopped and its folder removed at the end."""
    folder = tmp_path_factory.mktemp("private-mariadb")
    server = PrivateMariaDB(folder)
    server.install()
    server.start()
    try:
        yield server
    finally:
        server.stop(graceful=True)
        shutil.rmtree(folder, ignore_errors=True)
