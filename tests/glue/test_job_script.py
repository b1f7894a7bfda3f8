"""The Glue job script run with `spark-submit` and Glue-style arguments (awsglue absent) on
the demo data gives the same rows as the CLI; a failing run exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tagsys.cli import main
from tagsys.demo.generator import generate_lake
from tagsys.demo.loader import load_seed_tags
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2024, 6, 30)
LOG4J = ROOT / "src" / "tagsys" / "config" / "log4j2.properties"
pytestmark = [pytest.mark.spark, pytest.mark.mariadb]


def _rows(db_url: str) -> dict[str, list[int]]:
    engine = create_store_engine(db_url)
    try:
        return {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    finally:
        engine.dispose()


def _spark_submit(
    script: Path, args: list[str], db_url: str, cwd: Path
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TAGSYS_DB_URL": db_url,  # the store's URL is never a job argument
    }
    command = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master", "local[1]",
        "--driver-memory", "1g",
        "--conf", "spark.ui.enabled=false",
        "--driver-java-options", f"-Dlog4j2.configurationFile=file:{LOG4J}",
        "--conf", "spark.sql.shuffle.partitions=2",
        str(script), *args,
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False
    )


def _errors(out: subprocess.CompletedProcess) -> str:
    return (out.stdout + out.stderr)[-3000:]


def test_spark_submit_with_glue_arguments_equals_the_cli(
    spark, sqlite_url: str, mariadb_url: str, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    generate_lake(lake, 300, AS_OF, seed=11)
    for url in (sqlite_url, mariadb_url):
        upgrade(url)
        load_seed_tags(url)

    cli = ["--env", "local", "--db-url", sqlite_url, "--lake-uri", str(lake)]
    assert main([*cli, "--mode", "task-all", "--as-of", "2024-06-30"]) == 0
    users = ["--user-ids", "user_000001,user_000002", "--as-of", "2025-06-30"]
    assert main([*cli, "--mode", "task-users", *users]) == 0  # a year later: tags change

    # what Glue gives the script: default arguments, Glue's own, then the run's (seed spelling)
    glue = ["--env", "local", "--lake_uri", str(lake), "--JOB_ID", "j_1", "--TempDir", "s3://t/"]
    script = ROOT / "src" / "tagsys" / "glue" / "job_script.py"
    first = _spark_submit(
        script, [*glue, "--mode", "task-all", "--as_of", "2024-06-30"], mariadb_url, tmp_path
    )
    assert first.returncode == 0, _errors(first)
    assert "TAGSYS_RESULT" in first.stdout
    second = _spark_submit(
        ROOT / "environments" / "glue-dev" / "glue_job.py",
        [
            *glue,
            "--tag_mode=task-users",
            "--user_ids=user_000001,user_000002",
            "--as_of=2025-06-30",
        ],
        mariadb_url,
        tmp_path,
    )
    assert second.returncode == 0, _errors(second)

    expected = _rows(sqlite_url)
    assert expected and _rows(mariadb_url) == expected
    assert expected["user_000001"] != [1, 2, 3, 4, 5, 6, 7, 8]  # the second run changed rows

    bad = _spark_submit(
        script, [*glue, "--mode", "task-tags", "--tag_ids", "999"], mariadb_url, tmp_path
    )
    assert bad.returncode == 1
    output = bad.stdout + bad.stderr  # spark-submit merges the driver's stderr into stdout
    assert "Error: " in output and "999" in output and "Traceback" not in output
