"""Jobs on MariaDB over real sockets: concurrency, cancellation, API keys, several instances
on one store, and schedules."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
import sqlalchemy as sa

from tagsys.api import TagSystemAPI
from tagsys.settings import load_settings
from tests.service.conftest import drop_mariadb, make_lake, make_mariadb
from tests.service.support import AS_OF, Service, job_rows, service_env, table_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.mariadb]
KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lake(tmp_path_factory.mktemp("lake"), 20_000)


@pytest.fixture(scope="module")
def store(seeded_mariadb: str) -> str:
    return seeded_mariadb


@pytest.fixture(scope="module")
def service(lake: Path, store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    env = service_env(store, lake, TAGSYS_API_KEY=KEY)
    service = Service(env, tmp_path_factory.mktemp("log") / "a.log", workers=3)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def expected(spark: SparkSession, lake: Path) -> Iterator[dict[str, tuple[list[int], dict]]]:
    """user_tags after one task-all, computed in this process on a database of its own."""
    from tagsys.demo.loader import load_seed_tags
    from tagsys.store.migrate import upgrade

    url = make_mariadb()
    try:
        upgrade(url)
        load_seed_tags(url)
        settings = load_settings("local", db_url=url, lake_uri=str(lake))
        with TagSystemAPI(settings=settings, spark=spark) as api:
            assert api.run(api.request("task-all", as_of=AS_OF)).succeeded
        yield table_rows(url)
    finally:
        drop_mariadb(url)


def watch_running(service: Service, tasks: list[str], stop: threading.Event) -> list[int]:
    """How many of `tasks` were running at each poll."""
    seen: list[int] = []
    while not stop.is_set():
        listed = service.get("/api/v1/tasks", params={"status": "running", "limit": 100}).json()
        seen.append(sum(t["task_id"] in tasks for t in listed["tasks"]))
        time.sleep(0.05)
    return seen


def test_jobs_run_three_at_a_time_and_end_as_one_sequential_run_would(
    service: Service, store: str, expected: dict
) -> None:
    requests_ = [
        {"mode": "task-tags", "tag_ids": [1, 2]},
        {"mode": "task-tags", "tag_ids": [3, 4]},
        {"mode": "full", "tag_ids": [5, 6]},
        {"mode": "task-tags", "tag_ids": [7, 8]},
        {"mode": "task-users", "user_ids": ["user_000001", "user_000002"]},
    ]
    tasks = [service.trigger(**r) for r in requests_]
    stop = threading.Event()
    counts: list[int] = []
    watcher = threading.Thread(target=lambda: counts.extend(watch_running(service, tasks, stop)))
    watcher.start()
    try:
        finals = [service.wait(t) for t in tasks]
    finally:
        stop.set()
        watcher.join()
    assert [f["status"] for f in finals] == ["completed"] * 5, finals
    assert max(counts) == 3  # the pool is bounded, and it is used
    assert table_rows(store) == expected


def test_cancelling_a_running_job_stops_its_run_and_a_rerun_converges(
    service: Service, store: str, expected: dict
) -> None:
    with sa.create_engine(store).begin() as conn:  # something for the run to write
        conn.execute(sa.text("DELETE FROM user_tags WHERE user_id > 'user_010000'"))
    task = service.trigger(mode="task-all")
    service.wait(task, until=frozenset({"running", "completed", "failed"}))
    answer = service.post(f"/api/v1/tasks/{task}/cancel")
    assert answer.status_code == 202, answer.text

    final = service.wait(task)
    assert final["status"] == "cancelled", final
    run = service.get(f"/api/v1/runs/{final['run_id']}").json()["run"]
    assert run["status"] == "cancelled"
    assert service.post(f"/api/v1/tasks/{task}/cancel").status_code == 409

    queued = service.trigger(mode="task-all")
    again = service.trigger(mode="task-all")
    assert service.post(f"/api/v1/tasks/{again}/cancel").status_code == 202
    assert service.wait(again)["status"] == "cancelled"
    assert service.wait(queued)["status"] == "completed"
    assert table_rows(store) == expected


def test_without_the_key_nothing_but_health_and_metrics_answers(service: Service) -> None:
    schema = requests.get(f"{service.url}/openapi.json", headers=service.headers).json()
    for path, operations in schema["paths"].items():
        concrete = path.replace("{task_id}", "x").replace("{run_id}", "x")
        concrete = concrete.replace("{tag_id}", "1").replace("{user_id}", "u")
        concrete = concrete.replace("{schedule_id}", "1").replace("{version}", "1")
        for method in operations:
            response = requests.request(method, service.url + concrete, json={}, timeout=30)
            if path in ("/health", "/metrics"):
                assert response.status_code == 200, (method, path)
            else:
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["error"]["code"] == "unauthorized"
    wrong = requests.get(f"{service.url}/api/v1/tasks", headers={"X-API-Key": "nope"}, timeout=30)
    assert wrong.status_code == 401
    bearer = {"Authorization": f"Bearer {KEY}"}
    assert requests.get(f"{service.url}/api/v1/tasks", headers=bearer, timeout=30).ok


def test_two_instances_on_one_store_run_each_of_20_jobs_exactly_once(
    service: Service, store: str, lake: Path, tmp_path: Path
) -> None:
    env = service_env(store, lake, TAGSYS_API_KEY=KEY)
    other = Service(env, tmp_path / "b.log", workers=2)
    try:
        users = [f"user_{n:06d}" for n in range(1, 41)]
        tasks = [
            (service if n % 2 else other).trigger(
                mode="task-users", user_ids=users[n * 2 : n * 2 + 2]
            )
            for n in range(20)
        ]
        finals = [(other if n % 2 else service).wait(t) for n, t in enumerate(tasks)]
    finally:
        other.stop()
    assert {f["status"] for f in finals} == {"completed"}
    jobs = {j["job_id"]: j for j in job_rows(store)}
    owners = {jobs[t]["owner"] for t in tasks}
    assert len(owners) == 2  # both instances took jobs
    run_ids = [jobs[t]["run_id"] for t in tasks]
    with sa.create_engine(store).connect() as conn:
        recorded = (
            conn.execute(sa.text("SELECT run_id FROM tag_runs WHERE mode = 'task-users'"))
            .scalars()
            .all()
        )
    assert sorted(run_ids) == sorted(set(run_ids))
    assert all(recorded.count(r) == 1 for r in run_ids)


def test_a_due_schedule_fires_exactly_once_across_instances(
    service: Service, store: str, lake: Path, tmp_path: Path
) -> None:
    created = service.post(
        "/api/v1/schedules",
        {"name": "nightly", "cron": "0 2 * * *", "request": {"mode": "task-tags", "tag_ids": [1]}},
    )
    assert created.status_code == 201, created.text
    schedule = created.json()["schedule"]
    assert schedule["next_fire_at"] > datetime.now(UTC).isoformat()
    duplicate = service.post(
        "/api/v1/schedules",
        {"name": "nightly", "cron": "0 3 * * *", "request": {"mode": "task-all"}},
    )
    assert duplicate.status_code == 409

    other = Service(service_env(store, lake, TAGSYS_API_KEY=KEY), tmp_path / "b.log", workers=1)
    try:
        missed = datetime.now(UTC) - timedelta(days=3)  # three nightly slots missed in downtime
        with sa.create_engine(store).begin() as conn:
            conn.execute(
                sa.text("UPDATE tag_schedules SET next_fire_at = :at WHERE schedule_id = :id"),
                {"at": missed.replace(tzinfo=None), "id": schedule["schedule_id"]},
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            fired = service.get(f"/api/v1/schedules/{schedule['schedule_id']}").json()["schedule"]
            if fired["last_task_id"]:
                break
            time.sleep(0.5)
        time.sleep(3)  # both instances had several chances to fire it again
        read_at = datetime.now(UTC).isoformat()  # the next firing is after this moment
        fired = service.get(f"/api/v1/schedules/{schedule['schedule_id']}").json()["schedule"]
        assert service.wait(fired["last_task_id"])["status"] == "completed"
    finally:
        other.stop()
    from_schedule = [j for j in job_rows(store) if j["job_id"] == fired["last_task_id"]]
    with sa.create_engine(store).connect() as conn:
        count = conn.execute(
            sa.text("SELECT COUNT(*) FROM tag_jobs WHERE schedule_id = :id"),
            {"id": schedule["schedule_id"]},
        ).scalar()
    assert count == 1 and len(from_schedule) == 1
    assert fired["next_fire_at"] > read_at
    assert service.delete(f"/api/v1/schedules/{schedule['schedule_id']}").status_code == 200
    assert service.get(f"/api/v1/schedules/{schedule['schedule_id']}").status_code == 404


def test_a_killed_instance_s_job_fails_with_the_reason_and_queued_jobs_still_run(
    service: Service, store: str, lake: Path, tmp_path: Path
) -> None:
    service.stop()  # this instance would otherwise take the queued jobs
    env = service_env(store, lake, TAGSYS_API_KEY=KEY)
    doomed = Service(env, tmp_path / "doomed.log", workers=1)
    task = doomed.trigger(mode="task-all")
    run_id = doomed.wait(task, until=frozenset({"running"}))["run_id"]
    deadline = time.monotonic() + 60
    while (run_id is None or doomed.get(f"/api/v1/runs/{run_id}").status_code != 200) and (
        time.monotonic() < deadline
    ):  # kill it once its run has started, not between the claim and the run's record
        time.sleep(0.1)
        run_id = doomed.status(task)["run_id"]
    queued = [doomed.trigger(mode="task-tags", tag_ids=[n]) for n in (2, 3)]
    doomed.kill()

    survivor = Service(env, tmp_path / "survivor.log", workers=1)
    try:
        failed = survivor.wait(task, timeout=120)
        assert failed["status"] == "failed"
        assert "stopped" in failed["error"] and "heartbeat" in failed["error"], failed["error"]
        assert [survivor.wait(t)["status"] for t in queued] == ["completed", "completed"]
        run = survivor.get(f"/api/v1/runs/{failed['run_id']}").json()["run"]
        # The run's own record says its process died: read as abandoned, or already ended as
        # such by the survivor's audience index maintenance, which takes the run in.
        assert run["status"] == "abandoned" or (
            run["status"] == "failed" and run["error"].startswith("abandoned: no heartbeat")
        ), run
    finally:
        survivor.stop()
