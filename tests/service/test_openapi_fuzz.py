"""schemathesis against the service's own OpenAPI schema, with and without the key: no 5xx,
no response outside the schema, and nothing but /health and /metrics without the key."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import make_lake, seeded_sqlite
from tests.service.support import Service, service_env

pytestmark = pytest.mark.spark
KEY = "fuzz-key"
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
# `positive_data_acceptance` expects every schema-valid body to be accepted; the service
# also refuses what a schema cannot say (unknown tag ids, a mode without its lists, a
# cursor it did not hand out) with a 422 that names the problem.
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    lake = make_lake(tmp_path_factory.mktemp("lake"), 200)
    store = seeded_sqlite(tmp_path_factory.mktemp("store"))
    env = service_env(store, lake, TAGSYS_API_KEY=KEY, TAGSYS_JOB_QUEUE_LIMIT="1000")
    service = Service(env, tmp_path_factory.mktemp("log") / "service.log", workers=1)
    yield service
    service.stop()


def schemathesis(service: Service, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{service.url}/openapi.json",
            *CHECKS,
            "--max-examples",
            "15",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "20261202",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        check=False,
    )


def test_with_the_key_no_server_error_and_no_schema_violation(
    service: Service, tmp_path: Path
) -> None:
    result = schemathesis(service, tmp_path, "--header", f"X-API-Key: {KEY}")
    assert result.returncode == 0, result.stdout[-6000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout[-3000:]


def test_without_the_key_every_operation_but_health_and_metrics_is_refused(
    service: Service, tmp_path: Path
) -> None:
    before = service.get("/api/v1/tasks", params={"limit": 1000}).json()["count"]
    result = schemathesis(service, tmp_path, "--exclude-path-regex", "^/(health|metrics)$")
    assert result.returncode == 0, result.stdout[-6000:]
    assert service.get("/api/v1/tasks", params={"limit": 1000}).json()["count"] == before
