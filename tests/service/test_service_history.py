"""History and rollback over the service, on a real socket (SQLite store): a job's run is
rolled back (and the rollback rolled back), the user and tag histories page with cursors,
and a missing or unrollable run is refused with the service's error shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.conftest import make_lake, seeded_sqlite
from tests.service.support import Service, service_env, table_rows

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    lake = make_lake(tmp_path_factory.mktemp("lake"), 300)
    store = seeded_sqlite(tmp_path_factory.mktemp("store"))
    log = tmp_path_factory.mktemp("log") / "service.log"
    service = Service(service_env(store, lake), log, workers=1)
    yield service, store
    service.stop()


def _run(service: Service, **body: object) -> str:
    status = service.wait(service.trigger(**body))
    assert status["status"] == "completed", status
    return str(status["run_id"])


def test_rollback_and_history_over_http(service: tuple[Service, str]) -> None:
    svc, store = service
    run = _run(svc, tag_ids=[1, 5])
    after = table_rows(store)
    assert after

    dry = svc.post(f"/api/v1/runs/{run}/rollback", {"dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["rollback"]["deleted"] == len(after) and table_rows(store) == after
    undo = svc.post(f"/api/v1/runs/{run}/rollback")
    assert undo.status_code == 200, undo.text
    body = undo.json()["rollback"]
    assert (body["status"], body["deleted"], body["conflicts"]) == ("completed", len(after), 0)
    assert table_rows(store) == {}
    redo = svc.post(f"/api/v1/runs/{body['run_id']}/rollback").json()["rollback"]
    assert redo["recreated"] == len(after) and table_rows(store) == after

    user = sorted(after)[0]
    first = svc.get(f"/api/v1/users/{user}/history", params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [c["run_id"] for c in page["changes"]] == [redo["run_id"], body["run_id"]]
    rest = svc.get(f"/api/v1/users/{user}/history", params={"cursor": page["next_cursor"]})
    (oldest,) = rest.json()["changes"]
    assert oldest["run_id"] == run and oldest["entered"] == after[user][0]
    assert rest.json()["next_cursor"] is None

    tag = next(t for t in (1, 5) if any(t in ids for ids, _ in after.values()))
    runs = svc.get(f"/api/v1/tags/{tag}/history").json()["runs"]
    members = sum(tag in ids for ids, _ in after.values())
    assert [(r["entered"], r["exited"], r["members"]) for r in runs] == [
        (members, 0, members),
        (0, members, 0),
        (members, 0, members),
    ]

    missing = svc.post("/api/v1/runs/nope/rollback")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = svc.get(f"/api/v1/users/{user}/history", params={"cursor": "garbage"})
    assert bad.status_code == 422, bad.text
