"""The REST endpoints the console added (fields, operators, validate, explain, run progress)
and how the console's files are served, on the console tests' service."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.service.support import Service

pytestmark = pytest.mark.spark

NESTED: dict[str, Any] = {
    "logic": "AND",
    "conditions": [
        {"field": "total_asset_value", "operator": ">=", "value": 50000},
        {
            "logic": "OR",
            "conditions": [
                {"field": "age", "operator": "in_range"},
                {"field": "kyc_status", "operator": "=", "value": "verified"},
            ],
        },
    ],
}


def test_fields_are_the_lake_s_columns_with_their_kinds(console: Service) -> None:
    fields = {f["field"]: f for f in console.get("/api/v1/lake/fields").json()["fields"]}
    assert fields["total_asset_value"] == {
        "field": "total_asset_value",
        "table": "user_asset_summary",
        "column": "total_asset_value",
        "kind": "number",
        "data_type": "decimal(18,2)",
    }
    assert fields["registration_date"]["kind"] == "date"
    assert fields["kyc_status"]["kind"] == "string"
    assert "user_id" not in fields


def test_operators_say_their_kinds_and_value_shapes(console: Service) -> None:
    found = {o["operator"]: o for o in console.get("/api/v1/rules/operators").json()["operators"]}
    assert found["in_range"] == {
        "operator": "in_range",
        "kinds": ["number", "date"],
        "value": "range",
    }
    assert found["is_null"]["value"] == "none"
    assert found["in"]["value"] == "list"
    assert found["recent_days"] == {"operator": "recent_days", "kinds": ["date"], "value": "days"}
    assert found["days_ago_between"]["value"] == "day_range"
    assert found["contains"]["kinds"] == ["string"]


def test_validate_locates_each_problem_as_a_save_would(console: Service) -> None:
    answer = console.post("/api/v1/rules/validate", {"rules": [NESTED]}).json()
    assert answer["valid"] is False
    assert [p["location"] for p in answer["problems"]] == [
        "rules[0].conditions[1].conditions[0].value"
    ]
    assert answer["problems"][0]["severity"] == "error"
    assert "in_range" in answer["problems"][0]["problem"]

    fixed = {**NESTED, "conditions": [NESTED["conditions"][0]]}
    as_text = {"field": "kyc_status", "operator": "date_between", "type": "date",
               "value": ["2024-01-01", "2024-12-31"]}  # fmt: skip
    answer = console.post(
        "/api/v1/rules/validate",
        {"rules": [fixed, {"logic": "AND", "conditions": [as_text]}]},
    ).json()
    assert answer["valid"] is True
    assert answer["problems"] == [
        {
            "location": "rules[1].conditions[0].type",
            "problem": answer["problems"][0]["problem"],
            "severity": "warning",
        }
    ]
    # The same locations as the save's 422.
    saved = console.post(
        "/api/v1/tags", {"name": "validate twin", "category": "财富管理", "rules": [NESTED]}
    )
    assert saved.status_code == 422
    assert [d["location"] for d in saved.json()["error"]["details"]] == [
        "rules[0].conditions[1].conditions[0].value"
    ]


def test_validate_takes_anything_json_and_names_what_is_wrong(console: Service) -> None:
    answer = console.post("/api/v1/rules/validate", {"rules": [3, "x", {"logic": "XOR"}]}).json()
    assert answer["valid"] is False
    rules = {p["location"].split(".")[0] for p in answer["problems"]}
    assert rules == {"rules[0]", "rules[1]", "rules[2]"}
    assert console.post("/api/v1/rules/validate", {"rules": "no"}).status_code == 422


def test_explain_gives_each_condition_s_value_and_result(console: Service) -> None:
    user = console.get("/api/v1/tags/1/users", params={"limit": 1}).json()["users"][0]["user_id"]
    answer = console.get(f"/api/v1/users/{user}/explain", params={"tag_id": 1}).json()
    explanation = answer["explanation"]
    assert explanation["applies"] is True and explanation["active"] is True
    root = explanation["rules"][0]["root"]
    assert root["logic"] == "AND" and root["result"] is True
    first = root["children"][0]
    assert first["field"] == "total_asset_value" and first["result"] is True
    assert float(first["actual"]) >= 100000

    ghost = console.get("/api/v1/users/nobody/explain", params={"tag_id": 1}).json()
    assert ghost["explanation"]["applies"] is False
    assert ghost["explanation"]["rules"][0]["root"]["children"][0]["actual"] is None
    missing = console.get("/api/v1/users/nobody/explain", params={"tag_id": 999})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_progress_of_a_finished_run_has_no_spark_part(console: Service) -> None:
    run = console.get("/api/v1/runs", params={"limit": 1}).json()["runs"][0]
    answer = console.get(f"/api/v1/runs/{run['run_id']}/progress").json()
    assert answer == {
        "success": True,
        "run_id": run["run_id"],
        "status": run["status"],
        "phase": run["phase"],
        "spark": None,
    }
    assert console.get("/api/v1/runs/nope/progress").status_code == 404


def test_the_console_is_served_without_a_key_with_its_security_headers(console: Service) -> None:
    home = requests.get(console.url, timeout=30, allow_redirects=False)
    assert home.status_code == 307 and home.headers["location"].endswith("/ui/")
    page = requests.get(f"{console.url}/ui/", timeout=30)
    assert page.status_code == 200 and '<script type="module" src="js/main.js">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = requests.get(f"{console.url}/ui/js/pages/builder.js", timeout=30)
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    missing = requests.get(f"{console.url}/ui/nothing.js", timeout=30)
    assert missing.status_code == 404 and missing.json()["success"] is False
    # The data it shows is not open: the API still wants the key.
    assert requests.get(f"{console.url}/api/v1/lake/fields", timeout=30).status_code == 401
