"""A `tagsys serve` subprocess on a real socket for the management tests.

(Kept small on purpose; tests/service/support.py is the fuller harness of the service tests.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

TAGSYS = str(Path(sys.executable).with_name("tagsys"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db_url: str, lake: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSYS_", "MYSQL_"))}
        env.update(
            TAGSYS_DB_URL=db_url,
            TAGSYS_LAKE_URI=str(lake),
            TAGSYS_SPARK_MASTER="local[2]",
            TAGSYS_SPARK_CONF=json.dumps(
                {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"}
            ),
        )
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [TAGSYS, "serve", "--port", str(port)], env=env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited:\n{log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"the service did not start:\n{log.read_text()[-3000:]}")

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        headers = {"X-Actor": "alice", **kwargs.pop("headers", {})}
        return requests.request(
            method, self.url + path, json=body, headers=headers, timeout=120, **kwargs
        )

    def run(self, **body: Any) -> dict[str, Any]:
        """Trigger a run, wait for it, return the job status."""
        response = self.call("POST", "/api/v1/tags/trigger", body)
        assert response.status_code == 202, response.text
        task = response.json()["task_id"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = self.call("GET", f"/api/v1/tasks/{task}/status").json()["status"]
            if status["status"] in ("completed", "failed", "cancelled"):
                assert status["status"] == "completed", status
                return dict(status)
            time.sleep(0.3)
        raise AssertionError(f"task {task} did not finish")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
