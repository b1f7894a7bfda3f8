"""Tag management over HTTP (a `tagsys serve` subprocess) on SQLite and MariaDB: create,
preview, save, run, change, run, revert, run; the rows are what an independent oracle
computes for the version in force, and each run records the versions it used."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tagsys.store.migrate import upgrade
from tests.conftest import MYSQL_SERVER_URL
from tests.engine.lakes import AS_OF, build_shop_lake
from tests.management.test_manager import BROKEN, NESTED
from tests.oracle import computed_tags
from tests.service.support import Service, service_env

pytestmark = pytest.mark.spark

CHANGED: dict[str, Any] = {
    "logic": "OR",
    "conditions": [
        {"field": "amount", "operator": ">=", "value": 4000},
        {"field": "vip", "operator": "=", "value": True},
    ],
}


def members(lake: Path, rule: dict[str, Any]) -> set[str]:
    computed = computed_tags(lake, {1: ("t", "c", [rule])}, AS_OF)
    return {user for user, tags in computed.items() if 1 in tags}


def holders(db_url: str, tag_id: int) -> set[str]:
    import json

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT user_id, tag_ids FROM user_tags")).all()
    finally:
        engine.dispose()
    return {user for user, ids in rows if tag_id in json.loads(ids)}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str, Path]]:
    folder = tmp_path_factory.mktemp("managed")
    lake = folder / "lake"
    build_shop_lake(lake)
    server = sa.create_engine(MYSQL_SERVER_URL) if request.param == "mariadb" else None
    name = f"tagsys_mgmt_{uuid.uuid4().hex[:12]}"
    if server is not None:
        with server.begin() as conn:
            conn.execute(
                sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            )
        url = f"{MYSQL_SERVER_URL}/{name}?charset=utf8mb4"
    else:
        url = f"sqlite:///{folder / 'tagsys.db'}"
    upgrade(url)
    service = Server(Service(service_env(url, lake), folder / "service.log"))
    try:
        yield service, url, lake
    finally:
        service.stop()
        if server is not None:
            with server.begin() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
            server.dispose()


class Server:
    """The service, called as alice unless told otherwise."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        return self.service.request(method, path, body, {"X-Actor": "alice", **(headers or {})})

    def run(self, **body: Any) -> dict[str, Any]:
        status = self.service.wait(self.service.trigger(**body))
        assert status["status"] == "completed", status
        return status

    def stop(self) -> None:
        self.service.stop()


def tag_versions_of(service: Server, status: dict[str, Any]) -> dict[int, int]:
    run = service.call("GET", f"/api/v1/runs/{status['run_id']}").json()["run"]
    return {t["tag_id"]: t["version"] for t in run["summary"]["tags"]}


def test_create_preview_run_change_revert(served: tuple[Server, str, Path]) -> None:
    service, url, lake = served
    as_of = AS_OF.isoformat()
    assert service.call("POST", "/api/v1/categories", {"name": "value"}).status_code == 201
    cold = {"rule": NESTED, "as_of": as_of, "timeout_seconds": 300}  # reads the lake first
    preview = service.call("POST", "/api/v1/rules/preview", cold)
    assert preview.status_code == 200, preview.text
    first = members(lake, NESTED)
    seen = preview.json()["preview"]
    assert seen["matched"] == len(first) > 0
    assert seen["sample"] == sorted(seen["sample"]) and set(seen["sample"]) <= first
    assert len(seen["sample"]) == min(20, len(first))
    assert [c["location"] for c in seen["conditions"]] == [
        "rule.conditions[0]",
        "rule.conditions[1]",
    ]
    assert seen["conditions"][0]["matched"] >= seen["matched"]

    created = service.call(
        "POST", "/api/v1/tags", {"name": "big", "category": "value", "rules": [NESTED]}
    )
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == '"1"'
    tag_id = created.json()["tag"]["tag_id"]
    status = service.run(tag_ids=[tag_id], as_of=as_of)
    assert holders(url, tag_id) == first
    assert tag_versions_of(service, status) == {tag_id: 1}

    compare = {"rule": CHANGED, "as_of": as_of, "tag_id": tag_id, "timeout_seconds": 300}
    diffed = service.call("POST", "/api/v1/rules/preview", compare).json()["preview"]
    second = members(lake, CHANGED)
    assert (diffed["stored"], diffed["added"], diffed["removed"]) == (
        len(first),
        len(second - first),
        len(first - second),
    )
    put = service.call(
        "PUT",
        f"/api/v1/tags/{tag_id}/rules",
        {"rules": [CHANGED], "comment": "wider"},
        headers={"If-Match": '"1"', "X-Actor": "bob"},
    )
    assert put.status_code == 200 and put.json()["tag"]["version"] == 2, put.text
    late = service.call(
        "PATCH", f"/api/v1/tags/{tag_id}", {"description": "x", "expected_version": 1}
    )
    assert late.status_code == 409, late.text
    assert late.json()["error"]["details"]["current_version"] == 2
    status = service.run(tag_ids=[tag_id], as_of=as_of)
    assert holders(url, tag_id) == second
    assert tag_versions_of(service, status) == {tag_id: 2}

    back = service.call("POST", f"/api/v1/tags/{tag_id}/revert", {"version": 1})
    assert back.status_code == 200 and back.json()["tag"]["version"] == 3, back.text
    status = service.run(mode="task-all", as_of=as_of)
    assert holders(url, tag_id) == first
    assert tag_versions_of(service, status) == {tag_id: 3}

    history = service.call("GET", f"/api/v1/tags/{tag_id}/versions").json()["versions"]
    assert [(v["version"], v["action"], v["actor"]) for v in history] == [
        (1, "create", "alice"),
        (2, "update", "bob"),
        (3, "revert", "alice"),
    ]
    changes = service.call("GET", f"/api/v1/tags/{tag_id}/diff?from=1&to=2").json()["changes"]
    assert changes == [
        {"path": "rules[0].logic", "change": "changed", "before": "AND", "after": "OR"},
        {
            "path": "rules[0].conditions[0].value",
            "change": "changed",
            "before": 1000,
            "after": 4000,
        },
        {"path": "rules[0].conditions[1].logic", "change": "removed", "before": "OR"},
        {
            "path": "rules[0].conditions[1].conditions",
            "change": "removed",
            "before": NESTED["conditions"][1]["conditions"],
        },
        {"path": "rules[0].conditions[1].field", "change": "added", "after": "vip"},
        {"path": "rules[0].conditions[1].operator", "change": "added", "after": "="},
        {"path": "rules[0].conditions[1].value", "change": "added", "after": True},
    ]
    audit = service.call("GET", "/api/v1/audit?limit=2").json()
    assert [e["action"] for e in audit["entries"]] == ["revert", "update"]
    assert audit["next_cursor"]

    gone = service.call("DELETE", f"/api/v1/tags/{tag_id}", headers={"If-Match": '"3"'})
    assert gone.status_code == 200 and gone.json()["tag"]["deleted"], gone.text
    assert tag_id not in [t["tag_id"] for t in service.call("GET", "/api/v1/tags").json()["tags"]]


def test_bad_input_is_refused_with_every_problem(served: tuple[Server, str, Path]) -> None:
    service, _, _ = served
    service.call("POST", "/api/v1/categories", {"name": "people"})
    bad = service.call(
        "POST", "/api/v1/tags", {"name": "broken", "category": "people", "rules": [NESTED, BROKEN]}
    )
    assert bad.status_code == 422, bad.text
    assert [d["location"] for d in bad.json()["error"]["details"]] == [
        "rules[1].conditions[1].conditions[0].value",
        "rules[1].conditions[1].conditions[1].field",
    ]
    draft = service.call(
        "POST",
        "/api/v1/tags",
        {"name": "broken", "category": "people", "rules": [BROKEN], "active": False},
    )
    assert draft.status_code == 201 and len(draft.json()["tag"]["problems"]) == 2
    unknown = service.call("POST", "/api/v1/tags", {"name": "x", "category": "people", "colour": 1})
    assert (
        unknown.status_code == 422 and unknown.json()["error"]["details"][0]["location"] == "colour"
    )
    duplicate = service.call("POST", "/api/v1/tags", {"name": "broken", "category": "people"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "duplicate_name"
    assert service.call("POST", "/api/v1/categories", {"name": "people"}).status_code == 409
    tag_id = draft.json()["tag"]["tag_id"]
    nulls = service.call("PATCH", f"/api/v1/tags/{tag_id}", {"rules": None, "name": None})
    assert nulls.status_code == 422 and "name, rules cannot be null" in nulls.text, nulls.text
    missing = service.call("DELETE", "/api/v1/tags/999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    preview = service.call("POST", "/api/v1/rules/preview", {"rule": BROKEN})
    assert [d["location"] for d in preview.json()["error"]["details"]] == [
        "rule.conditions[1].conditions[0].value",
        "rule.conditions[1].conditions[1].field",
    ]
    slow = service.call("POST", "/api/v1/rules/preview", {"rule": NESTED, "timeout_seconds": 0.001})
    assert slow.status_code == 504 and "limit of 0.001 s" in slow.json()["error"]["message"]
    assert service.call("GET", "/api/v1/tags/available").status_code == 200
