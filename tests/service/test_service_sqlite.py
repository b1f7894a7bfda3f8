"""The service on the embedded store, over a real socket: the seed's REST example, the
query endpoints, bad input and metrics."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
import sqlalchemy as sa

from tagsys.api import TagSystemAPI
from tagsys.service.models import encode_cursor
from tagsys.settings import load_settings
from tagsys.store import jobs as store_jobs
from tagsys.store import runs as store_runs
from tagsys.store.db import create_store_engine
from tagsys.store.schema import tag_jobs
from tests.service.conftest import make_lake, seeded_sqlite
from tests.service.support import AS_OF, Service, service_env, table_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark
EXAMPLE = Path(__file__).with_name("seed_rest_example.py")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lake(tmp_path_factory.mktemp("lake"), 400)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return seeded_sqlite(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def service(lake: Path, store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    log = tmp_path_factory.mktemp("log") / "service.log"
    exports = tmp_path_factory.mktemp("exports")
    env = service_env(store, lake, TAGSYS_JOB_QUEUE_LIMIT="3", TAGSYS_EXPORT_DIR=str(exports))
    service = Service(env, log, workers=1)
    yield service
    service.stop()


def expected_rows(
    spark: SparkSession, lake: Path, folder: Path, **request: object
) -> dict[str, tuple[list[int], dict[str, object]]]:
    """What the engine writes for the same request, in this process, on a fresh store."""
    url = seeded_sqlite(folder)
    settings = load_settings("local", db_url=url, lake_uri=str(lake))
    with TagSystemAPI(settings=settings, spark=spark) as api:
        summary = api.run(api.request(**{"as_of": AS_OF, **request}))
        assert summary.succeeded
    return table_rows(url)


def test_the_seed_rest_example_runs_unchanged_and_matches_the_engine(
    service: Service, store: str, lake: Path, spark: SparkSession, tmp_path: Path
) -> None:
    script = tmp_path / "example.py"
    script.write_text(EXAMPLE.read_text().replace("localhost:5000", f"127.0.0.1:{service.port}"))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=True
    ).stdout

    assert "任务已提交" in out
    assert "任务状态: completed" in out
    # The example runs tags 1-3 for all users as of today: the engine, asked the same, agrees
    # (on the run's own date: midnight may have passed since).
    engine = create_store_engine(store)
    try:
        run = max(
            (r for r in store_runs.list_runs(bind=engine) if r.mode == "task-tags"),
            key=lambda r: r.started_at,
        )
    finally:
        engine.dispose()
    expected = expected_rows(
        spark, lake, tmp_path, mode="task-tags", tag_ids=[1, 2, 3], as_of=run.as_of
    )
    assert table_rows(store) == expected


def test_a_user_s_tags_a_tag_s_users_and_stats_agree_with_the_table(
    service: Service, store: str
) -> None:
    task = service.trigger(mode="task-all")
    assert service.wait(task)["status"] == "completed"
    assert f"[job:{task}] tagsys.service.jobs: job {task}: completed" in service.log.read_text()
    rows = table_rows(store)

    user = next(u for u, (ids, _) in sorted(rows.items()) if len(ids) >= 2)
    body = service.get(f"/api/v1/users/{user}/tags").json()
    assert [t["tag_id"] for t in body["tags"]] == rows[user][0]
    assert all(t["tag_name"] and t["tag_category"] for t in body["tags"])
    assert body["created_time"] and body["updated_time"]
    assert service.get("/api/v1/users/nobody/tags").status_code == 404

    members, cursor, pages = [], None, 0
    while True:
        params = {"limit": 37, **({"cursor": cursor} if cursor else {})}
        page = service.get("/api/v1/tags/3/users", params=params).json()
        members += [u["user_id"] for u in page["users"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    holders = sorted(u for u, (ids, _) in rows.items() if 3 in ids)
    assert members == holders and pages > 1

    stats = {t["tag_id"]: t["users"] for t in service.get("/api/v1/tags/stats").json()["tags"]}
    for tag_id in range(1, 9):
        assert stats[tag_id] == sum(tag_id in ids for ids, _ in rows.values())


def test_tasks_and_runs_are_listed_newest_first_with_cursors(service: Service) -> None:
    first = service.get("/api/v1/tasks", params={"limit": 1}).json()
    assert first["count"] == 1 and first["next_cursor"]
    second = service.get("/api/v1/tasks", params={"limit": 1, "cursor": first["next_cursor"]})
    assert second.json()["tasks"][0]["submitted_at"] <= first["tasks"][0]["submitted_at"]
    completed = service.get("/api/v1/tasks", params={"status": "completed"}).json()["tasks"]
    assert completed and {t["status"] for t in completed} == {"completed"}

    runs = service.get("/api/v1/runs").json()["runs"]
    assert runs and runs[0]["status"] == "completed"
    run = service.get(f"/api/v1/runs/{runs[0]['run_id']}").json()["run"]
    assert run["summary"]["run_id"] == runs[0]["run_id"]
    task = service.status(completed[0]["task_id"])
    assert task["run_id"] and task["result"]["total_users"] == 400
    assert service.get("/api/v1/runs/nope").status_code == 404
    bad = service.get("/api/v1/tasks", params={"cursor": "garbage"})
    assert bad.status_code == 422 and "cursor" in bad.json()["error"]["message"]
    extreme = encode_cursor("0001-01-01T00:00:00+14:00", "x")  # year 0 in UTC
    for listing in ("/api/v1/tasks", "/api/v1/runs"):
        assert service.get(listing, params={"cursor": extreme}).status_code == 422
    for path in ("/api/v1/tags/99999999999999999999/history", "/api/v1/tags/1/versions/2147483648"):
        assert service.get(path).status_code == 422, path


def test_a_run_a_job_named_but_has_not_begun_is_starting_not_missing(
    service: Service, store: str
) -> None:
    """The task's status names its run id a moment before the run records itself; a console
    polling the run's progress then must not get a 404."""
    engine = create_store_engine(store)
    now = datetime.now(UTC)
    job = {"request": {"mode": "task-all"}, "submitted_at": now, "started_at": now}
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(tag_jobs).values(
                    **job,
                    job_id="elsewhere",
                    status="running",
                    owner="other",
                    heartbeat_at=now,
                    run_id="run-not-begun",
                )
            )
            conn.execute(
                sa.insert(tag_jobs).values(
                    **job,
                    job_id="cancelled-early",
                    status="cancelled",
                    completed_at=now,
                    run_id="run-never-begun",
                )
            )
        for run_id, status in (("run-not-begun", "starting"), ("run-never-begun", "cancelled")):
            answer = service.get(f"/api/v1/runs/{run_id}/progress")
            assert answer.status_code == 200, answer.text
            assert answer.json() == {
                "success": True,
                "run_id": run_id,
                "status": status,
                "phase": None,
                "spark": None,
            }
        assert service.get("/api/v1/runs/run-not-begun").status_code == 404  # no record yet
        assert service.get("/api/v1/runs/nope/progress").status_code == 404
    finally:
        store_jobs.set_job_status(bind=engine, job_id="elsewhere", status="failed")
        engine.dispose()


def test_a_schedule_that_never_falls_due_is_refused(service: Service) -> None:
    body = {"name": "leap", "cron": "0 0 30 2 *", "request": {"mode": "task-all"}}
    response = service.post("/api/v1/schedules", body)
    assert response.status_code == 422, response.text
    assert "never falls due" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ({"tag_ids": [1, 999, 998]}, "tag_ids", "998, 999"),
        ({"tag_ids": []}, "tag_ids", "at least 1"),
        ({"user_ids": [], "mode": "task-users"}, "user_ids", "at least 1"),
        ({"tag_ids": "1,2"}, "tag_ids", "valid list"),
        ({"tag_ids": [1], "user_ids": ["u"] * 10_001}, "user_ids", "at most 10000"),
        ({"mode": "sometimes"}, "mode", "'full'"),
        ({"mode": "incremental"}, "request", "needs days"),
        ({"tag_ids": [1], "surprise": True}, "surprise", "Extra inputs"),
        ({"as_of": "yesterday"}, "as_of", "date"),
        ({"mode": "task-all", "tag_ids": [1]}, "request", "task-tags"),
        ({"tag_ids": None}, "tag_ids", "is null"),  # null is not "every tag"
        ({"user_ids": None}, "user_ids", "is null"),
        ({"tag_ids": [1.0]}, "tag_ids[0]", "valid integer"),
        ({"tag_ids": [True]}, "tag_ids[0]", "valid integer"),
        ({"dry_run": "yes"}, "dry_run", "valid boolean"),
        ({"as_of": "0001-01-01"}, "as_of", "1900-01-01"),
    ],
)
def test_bad_input_is_refused_saying_what_and_where_and_starts_nothing(
    service: Service, body: dict[str, object], where: str, words: str
) -> None:
    before = service.get("/api/v1/tasks", params={"limit": 1000}).json()["count"]
    response = service.post("/api/v1/tags/trigger", body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert words in error["message"]
    assert response.json()["success"] is False
    assert any(d["location"] == where for d in error["details"]), error
    assert service.get("/api/v1/tasks", params={"limit": 1000}).json()["count"] == before


def test_every_response_carries_a_request_id_and_errors_share_one_shape(service: Service) -> None:
    response = service.get("/api/v1/nowhere", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "trace-42"
    assert set(response.json()) == {"success", "error"}
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert service.get("/health").headers["X-Request-ID"]
    put = service.request("PUT", "/api/v1/tags/1")
    assert put.status_code == 405 and put.json()["error"]["code"] == "method_not_allowed"
    assert set(put.headers["Allow"].split(", ")) >= {"DELETE", "GET", "PATCH"}, put.headers
    assert "use DELETE, GET" in put.json()["error"]["message"]


def test_a_full_queue_answers_429_with_retry_after(service: Service) -> None:
    answers = [
        service.post(
            "/api/v1/tags/trigger",
            {"mode": "task-all", "dry_run": True, "as_of": AS_OF.isoformat()},
        )
        for _ in range(6)
    ]
    refused = [a for a in answers if a.status_code == 429]
    assert refused, [a.status_code for a in answers]
    assert int(refused[0].headers["Retry-After"]) > 0
    assert refused[0].json()["error"]["code"] == "queue_full"
    for accepted in (a for a in answers if a.status_code == 202):
        assert service.wait(accepted.json()["task_id"])["status"] == "completed"


def test_metrics_show_jobs_requests_runs_and_tag_counts(service: Service) -> None:
    text = service.get("/metrics").text
    assert 'tagsys_jobs{status="completed"}' in text
    assert "tagsys_job_queue_depth" in text
    assert 'tagsys_http_request_duration_seconds_bucket{le="0.05",method="GET"' in text
    assert 'tagsys_run_duration_seconds_count{mode="task-all",status="completed"}' in text
    assert 'tagsys_run_rows_written_count{mode="task-all"}' in text
    assert 'tagsys_tag_users{tag_id="3"' in text


def test_audiences_over_http_agree_with_the_table(service: Service, store: str) -> None:
    assert service.wait(service.trigger(mode="task-all"))["status"] == "completed"
    rows = {u: set(ids) for u, (ids, _) in table_rows(store).items()}
    expression = {"and": [{"or": [1, 3]}, {"not": 5}]}
    want = {u for u, ids in rows.items() if ids & {1, 3} and 5 not in ids}

    body = service.post("/api/v1/audiences/count", {"expression": expression}).json()
    assert body["success"] and body["count"] == len(want)
    assert [o["count"] for o in body["operands"]] == [
        sum(bool(ids & {1, 3}) for ids in rows.values()),
        sum(5 not in ids for ids in rows.values()),
    ]
    assert {t["tag_id"]: t["count"] for t in body["tags"]} == {
        t: sum(t in ids for ids in rows.values()) for t in (1, 3, 5)
    }
    sample = service.post("/api/v1/audiences/sample", {"expression": expression, "n": 5}).json()
    assert len(sample["users"]) == 5 and set(sample["users"]) <= want

    bad = service.post("/api/v1/audiences/count", {"expression": {"and": [1, 999]}})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_audience"
    assert bad.json()["error"]["details"] == [
        {"location": "$.and[1]", "problem": "unknown tag id 999"}
    ]

    saved = service.post("/api/v1/audiences", {"name": "核心人群", "expression": expression})
    assert saved.status_code == 201, saved.text
    assert (
        service.post("/api/v1/audiences", {"name": "核心人群", "expression": 1}).status_code == 409
    )
    members, cursor = [], None
    while True:
        params = {"limit": 9, **({"cursor": cursor} if cursor else {})}
        page = service.get("/api/v1/audiences/核心人群/members", params=params).json()
        members += page["users"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(members) == sorted(want)
    assert service.wait(service.trigger(mode="task-all"))["status"] == "completed"
    sizes = service.get("/api/v1/audiences/核心人群/sizes").json()["sizes"]
    assert [s["size"] for s in sizes] == [len(want)]
    listed = service.get("/api/v1/audiences").json()["audiences"]
    assert [(a["name"], a["size"]) for a in listed] == [("核心人群", len(want))]

    done = service.post("/api/v1/audiences/export", {"name": "核心人群", "path": "out/a.csv"})
    assert done.status_code == 200 and done.json()["rows"] == len(want), done.text
    job = service.post(
        "/api/v1/audiences/export",
        {"expression": expression, "path": "out/b.parquet", "background": True},
    )
    assert job.status_code == 202, job.text
    status = service.wait(job.json()["task_id"])
    assert status["status"] == "completed" and status["result"]["export"]["rows"] == len(want)
    outside = service.post("/api/v1/audiences/export", {"expression": 1, "path": "../../x.csv"})
    assert outside.status_code == 422 and "export directory" in outside.json()["error"]["message"]
    assert service.request("DELETE", "/api/v1/audiences/核心人群").status_code == 200
    assert service.get("/api/v1/audiences/核心人群").status_code == 404


def test_malformed_requests_are_refused_with_4xx_not_500(service: Service) -> None:
    """Inputs that once reached the store or the file system unchecked (a 500), or worse."""
    url = service.url

    def status(response: requests.Response, expected: int, words: str) -> None:
        assert response.status_code == expected, response.text
        assert words in response.json()["error"]["message"], response.text

    broken = requests.post(url + "/api/v1/tags/trigger", data=b'{"tag_ids": [1,', timeout=30,
                           headers={**service.headers, "Content-Type": "application/json"})  # fmt: skip
    status(broken, 400, "not valid JSON")
    # A dry run sent as a form, misspelled or as text must never roll back for real.
    rollback = url + "/api/v1/runs/nope/rollback"
    form = requests.post(rollback, data={"dry_run": "true"}, headers=service.headers, timeout=30)
    assert form.status_code == 422, form.text
    for body in ({"dryrun": True}, {"dry_run": "yes"}):
        assert service.post("/api/v1/runs/nope/rollback", body).status_code == 422, body
    status(service.post("/api/v1/runs/nope/rollback", {"dry_run": True}), 404, "no run")
    # Digits int() cannot read, numbers beyond any version or id.
    status(service.request("PATCH", "/api/v1/tags/1", {"description": "x"},
                           headers={"If-Match": '"\u00b2"'}), 422, "If-Match")  # fmt: skip
    assert service.get("/api/v1/tags/1/diff", params={"from": 1, "to": 10**20}).status_code == 422
    for part in ("\u00b2", "99999999999999999999", "x"):
        cursor = encode_cursor(part)
        status(service.get("/api/v1/audit", params={"cursor": cursor}), 422, "cursor")
    extreme = base64.urlsafe_b64encode(
        json.dumps({"k": "user", "at": "0001-01-01T00:00:00+14:00", "run": "x"}).encode()
    ).decode()
    status(service.get("/api/v1/users/u/history", params={"cursor": extreme}), 422, "cursor")
    status(service.get("/api/v1/tags/999/users"), 404, "no tag with id 999")
    # Export paths the file system refuses.
    export = "/api/v1/audiences/export"
    for path in ("a\u0000.csv", "x" * 300 + "/a.csv"):
        status(service.post(export, {"expression": 1, "path": path}), 422, "cannot be a file")
    status(service.post(export, {"expression": 1, "path": "s3:///key.csv"}), 422, "no bucket")


def test_a_saved_audience_whose_tag_was_deleted_is_shown_with_its_problem(
    service: Service,
) -> None:
    assert service.wait(service.trigger(mode="task-all"))["status"] == "completed"  # an index
    assert service.post("/api/v1/categories", {"name": "short-lived"}).status_code == 201
    created = service.post(
        "/api/v1/tags", {"name": "soon gone", "category": "short-lived", "active": False}
    )
    assert created.status_code == 201, created.text
    tag_id = created.json()["tag"]["tag_id"]
    saved = service.post("/api/v1/audiences", {"name": "uses-soon-gone", "expression": tag_id})
    assert saved.status_code == 201, saved.text
    before = service.get("/api/v1/audiences/uses-soon-gone").json()
    assert before.get("count") == 0, before
    assert service.delete(f"/api/v1/tags/{tag_id}").status_code == 200

    shown = service.get("/api/v1/audiences/uses-soon-gone")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["audience"]["expression"] == tag_id and body["count"] is None
    assert str(tag_id) in body["problem"], body
    members = service.get("/api/v1/audiences/uses-soon-gone/members")
    assert members.status_code == 422 and members.json()["error"]["code"] == "invalid_audience"
    assert service.delete("/api/v1/audiences/uses-soon-gone").status_code == 200
