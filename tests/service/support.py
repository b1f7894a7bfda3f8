"""A `tagsys serve` process on a real socket, and what service tests share."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

AS_OF = date(2026, 1, 15)
FINAL = frozenset({"completed", "failed", "cancelled"})
TAGSYS = str(Path(sys.executable).with_name("tagsys"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(db_url: str, lake: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSYS_", "MYSQL_"))}
    env.pop("LOG_LEVEL", None)
    env.update(
        TAGSYS_DB_URL=db_url,
        TAGSYS_LAKE_URI=str(lake),
        TAGSYS_SPARK_CONF=json.dumps(
            {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"}
        ),
        TAGSYS_JOB_HEARTBEAT_SECONDS="1",
        TAGSYS_RUN_HEARTBEAT_SECONDS="1",
    )
    env.update(extra)
    return env


class Service:
    """`tagsys serve` in a subprocess; `url` once `/health` answers."""

    def __init__(self, env: Mapping[str, str], log: Path, workers: int = 3) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.key = env.get("TAGSYS_API_KEY")
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [TAGSYS, "serve", "--port", str(self.port), "--workers-jobs", str(workers)],
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"the service did not start:\n{self.log.read_text()[-3000:]}")

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key} if self.key else {}

    def get(self, path: str, headers: Mapping[str, str] = {}, **kwargs: Any) -> requests.Response:
        merged = {**self.headers, **headers}
        return requests.get(self.url + path, headers=merged, timeout=30, **kwargs)

    def post(
        self, path: str, body: Any = None, headers: Mapping[str, str] = {}, **kwargs: Any
    ) -> requests.Response:
        merged = {**self.headers, **headers}
        return requests.post(self.url + path, json=body, headers=merged, timeout=30, **kwargs)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, headers=self.headers, timeout=30)

    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] = {}
    ) -> requests.Response:
        """Any method (PATCH, PUT, DELETE with headers ...), with a JSON body if given."""
        merged = {**self.headers, **headers}
        return requests.request(method, self.url + path, json=body, headers=merged, timeout=120)

    def trigger(self, **body: Any) -> str:
        body.setdefault("as_of", AS_OF.isoformat())
        response = self.post("/api/v1/tags/trigger", body)
        assert response.status_code == 202, response.text
        return str(response.json()["task_id"])

    def status(self, task_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/tasks/{task_id}/status")
        assert response.status_code == 200, response.text
        return dict(response.json()["status"])

    def wait(
        self, task_id: str, timeout: float = 300, until: frozenset[str] = FINAL
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(task_id)
            if status["status"] in until:
                return status
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} still {status['status']} after {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def table_rows(db_url: str) -> dict[str, tuple[list[int], dict[str, Any]]]:
    """user_tags as user id -> (tag ids, tag details), parsed."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT user_id, tag_ids, tag_details FROM user_tags"))
            return {r[0]: (json.loads(r[1]), json.loads(r[2]) if r[2] else {}) for r in rows}
    finally:
        engine.dispose()


def job_rows(db_url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text("SELECT job_id, status, owner, run_id FROM tag_jobs"))
            return [dict(r._mapping) for r in result]
    finally:
        engine.dispose()
