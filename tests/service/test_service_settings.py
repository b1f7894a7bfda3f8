"""What the service decides before any Spark starts: where it may listen, which keys it
takes, how it logs, and how a trigger body becomes a run."""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import date

import pytest
from pydantic import ValidationError

from tagsys.service.observability import JsonFormatter, RequestIdFilter, request_id
from tagsys.service.requests import TriggerRequest
from tagsys.service.security import configured_keys, match_key
from tagsys.settings import load_settings
from tests.service.support import TAGSYS


def test_without_a_key_the_service_refuses_to_listen_beyond_loopback(tmp_path) -> None:
    done = subprocess.run(
        [TAGSYS, "serve", "--host", "0.0.0.0", "--port", "5999"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "TAGSYS_DATA_DIR": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 1
    assert "refusing to listen on 0.0.0.0 without an API key" in done.stderr
    assert "Traceback" not in done.stderr


def test_named_keys_and_the_single_key_are_matched_by_name() -> None:
    settings = load_settings("local", api_key="solo", api_keys={"crm": "k1", "ops": "k2"})
    keys = configured_keys(settings)
    assert set(keys) == {"default", "crm", "ops"}
    assert match_key(keys, "k2") == "ops"
    assert match_key(keys, "solo") == "default"
    assert match_key(keys, "k3") is None
    assert configured_keys(load_settings("local")) == {}


def test_json_logs_carry_the_request_id() -> None:
    record = logging.LogRecord("tagsys.x", logging.INFO, __file__, 1, "job %s done", ("j1",), None)
    token = request_id.set("req-7")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "req-7"
    assert entry["message"] == "job j1 done"
    assert entry["level"] == "INFO" and entry["logger"] == "tagsys.x"


@pytest.mark.parametrize(
    ("body", "mode", "tags", "users"),
    [
        ({"tag_ids": [3, 1, 3], "mode": "full"}, "task-tags", (1, 3), None),
        (
            {"tag_ids": [1], "user_ids": ["b", "a", "b"], "mode": "full"},
            "task-users",
            (1,),
            ("b", "a"),
        ),
        ({"mode": "full"}, "task-all", None, None),
        ({}, "task-all", None, None),
        ({"mode": "incremental", "days": 3, "tag_ids": [2]}, "incremental", (2,), None),
        ({"mode": "task-users", "user_ids": ["u"]}, "task-users", None, ("u",)),
    ],
)
def test_a_trigger_body_becomes_the_run_it_names(
    body: dict[str, object], mode: str, tags: tuple[int, ...] | None, users: tuple[str, ...] | None
) -> None:
    request = TriggerRequest.model_validate(body).to_run_request(date(2026, 1, 2))
    assert (request.mode, request.tag_ids, request.user_ids) == (mode, tags, users)
    assert request.as_of == date(2026, 1, 2)


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "full", "days": 2},
        {"mode": "task-tags"},
        {"mode": "incremental", "days": 1, "user_ids": ["u"]},
        {"tag_ids": [0]},
        {"user_ids": [""]},
        {"days": -1, "mode": "incremental"},
    ],
)
def test_contradictory_or_out_of_range_bodies_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TriggerRequest.model_validate(body)
