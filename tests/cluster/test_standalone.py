"""The product on a real Spark standalone cluster whose executors have nothing installed.

A master and two one-core workers run on 127.0.0.1 from the installed PySpark, with an
environment without this virtual environment. The executors' Python is the packed archive
(`tagsys pack`), whose interpreter is the bare base Python (no SQLAlchemy, PyMySQL, PyArrow or
tagsys of its own). The CLI runs in new processes (its own SparkSession: the test session's
local one stays untouched) for `task-all` and `task-users` into MariaDB; the rows must equal
those of the same runs in local mode. Two applications only: each costs a driver and two
executor JVMs on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tagsys.api import TagSystemAPI
from tagsys.demo.loader import load_seed_tags, write_demo_lake
from tagsys.pack import ENV_NAME, build, default_python
from tagsys.settings import load_settings
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tests.cluster.standalone import StandaloneCluster, bare_environment
from tests.conftest import mysql_database

pytestmark = [pytest.mark.spark, pytest.mark.mariadb, pytest.mark.cluster]

AS_OF = date(2025, 6, 30)
USERS = 1000
LISTED = ["user_000001", "user_000002", "user_000010", "user_000999", "user_999999"]
RUN_TIMEOUT_S = 300


@contextmanager
def database() -> Iterator[str]:
    """A migrated database with the seed's 8 tags."""
    with mysql_database() as url:
        upgrade(url)
        load_seed_tags(url)
        yield url


def rows(db_url: str) -> dict[str, tuple[Any, Any]]:
    engine = create_store_engine(db_url)
    try:
        stored = repository.read_user_tags(bind=engine)
    finally:
        engine.dispose()
    return {user: (row.tag_ids, row.tag_details) for user, row in stored.items()}


def forget_some_rows(db_url: str) -> None:
    """Take rows away so that task-users has inserts and updates to make."""
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM user_tags WHERE user_id IN ('user_000001', 'user_000010')")
        )
        conn.execute(
            sa.text(
                "UPDATE user_tags SET tag_ids = '[]', tag_details = '{}' "
                "WHERE user_id = 'user_000002'"
            )
        )
    engine.dispose()


def cli(
    mode: str,
    *args: str,
    cluster: StandaloneCluster,
    db_url: str,
    lake: Path,
    archive: Path,
    folder: Path,
) -> subprocess.CompletedProcess[str]:
    env = bare_environment()
    env["PATH"] = os.environ.get("PATH", "")  # the driver is this environment's CLI
    env["TAGSYS_SPARK_ARCHIVE"] = str(archive)
    env["TAGSYS_SPARK_CONF"] = json.dumps(
        {
            "spark.executor.memory": "1g",
            "spark.executor.cores": "1",
            "spark.cores.max": "2",
            "spark.sql.shuffle.partitions": "2",
            "spark.ui.enabled": "false",
            # short-lived executors on a busy 2-core machine: C1 compiles cheaply
            "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1",
        }
    )
    env["TAGSYS_DATA_DIR"] = str(folder / "data")
    command = [
        sys.executable,
        "-m",
        "tagsys.cli",
        "--mode",
        mode,
        "--db-url",
        db_url,
        "--lake-uri",
        str(lake),
        "--spark-master",
        cluster.master_url,
        *args,
    ]
    return subprocess.run(
        command,
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def local_runs(db_url: str, lake: Path, spark: Any, folder: Path) -> tuple[int, int, int]:
    """The reference: the same two runs in local mode; task-users' row counts."""
    settings = load_settings("local", db_url=db_url, lake_uri=str(lake), data_dir=folder)
    with TagSystemAPI(settings=settings, spark=spark) as api:
        assert api.run(api.request("task-all", as_of=AS_OF)).succeeded
        forget_some_rows(db_url)
        request = api.request("task-users", user_ids=LISTED, tag_ids=[1, 3, 5], as_of=AS_OF)
        summary = api.run(request)
        assert summary.succeeded
        return summary.rows_inserted, summary.rows_updated, summary.rows_unchanged


def test_task_all_and_task_users_on_a_standalone_cluster(spark: Any, tmp_path: Path) -> None:
    base_python = default_python()
    bare = subprocess.run(
        [base_python, "-c", "import sqlalchemy"],
        capture_output=True,
        env=bare_environment(),
        check=False,
    )
    assert bare.returncode != 0, f"{base_python} must have no SQLAlchemy for this test to prove"
    cluster = StandaloneCluster(tmp_path / "cluster")
    cluster.launch()  # the daemons start while the lake, the pack and the reference are made
    try:
        lake = tmp_path / "lake"
        write_demo_lake(str(lake), USERS, AS_OF)
        archive = build(tmp_path / "pack" / "tagsys_env.tar.gz").archive
        with database() as local_db, database() as cluster_db:
            local_counts = local_runs(local_db, lake, spark, tmp_path)
            assert sum(local_counts[:2]) > 0, "task-users should have rows to write"
            cluster.wait_ready()
            run = {
                "cluster": cluster,
                "db_url": cluster_db,
                "lake": lake,
                "archive": archive,
                "folder": tmp_path,
            }
            first = cli("task-all", "--as-of", AS_OF.isoformat(), "--json", **run)
            assert first.returncode == 0, first.stderr
            forget_some_rows(cluster_db)
            users = cli(
                "task-users",
                "--user-ids",
                ",".join(LISTED),
                "--tag-ids",
                "1,3,5",
                "--as-of",
                AS_OF.isoformat(),
                "--json",
                **run,
            )
            assert users.returncode == 0, users.stderr
            state = cluster.finished_state(applications=2)
            assert json.loads(first.stdout)["users_evaluated"] == USERS
            summary = json.loads(users.stdout)
            counts = tuple(summary[f"rows_{k}"] for k in ("inserted", "updated", "unchanged"))
            assert counts == local_counts
            assert rows(cluster_db) == rows(local_db)
            assert len(rows(cluster_db)) > USERS // 2
    finally:
        cluster.stop()

    # Both applications ran one executor on each worker, in the unpacked archive: its
    # bin/python (the bare base interpreter, isolated by pyvenv.cfg) ran their Python code.
    applications = state["completedapps"]
    assert isinstance(applications, list) and len(applications) == 2, applications
    for index in range(cluster.workers):
        executors = sorted(cluster.work_dir(index).glob("app-*/*/"))
        assert len(executors) == 2, executors
        for executor in executors:
            assert (executor / ENV_NAME / "bin" / "python").resolve() == Path(base_python).resolve()
            assert (executor / ENV_NAME / "pyvenv.cfg").is_file()
            assert "Running task" in (executor / "stderr").read_text(errors="replace")
