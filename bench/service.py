"""The service benchmark (`bench/run.py --service`): jobs timed through HTTP on a warm
service, and the latency of the status and list endpoints while a job runs.

Each job is timed from the POST of the trigger to the poll that first sees it final (polls
every 20 ms), so it includes queueing, the claim and the store round trips.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median, quantiles
from typing import Any

import requests

from bench import report, store
from bench.lake import ensure_lake
from bench.rulegen import bench_tags

TARGETS = {
    "first_run": 20.0,
    "unchanged_run": 10.0,
    "task_users_1000": 3.0,
    "status_p99_ms": 50.0,
    "list_p99_ms": 50.0,
}


@dataclass
class ServiceBench:
    url: str
    process: subprocess.Popen[bytes]

    def trigger(self, body: dict[str, Any]) -> str:
        response = requests.post(f"{self.url}/api/v1/tags/trigger", json=body, timeout=60)
        response.raise_for_status()
        return str(response.json()["task_id"])

    def status(self, task_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.url}/api/v1/tasks/{task_id}/status", timeout=60)
        response.raise_for_status()
        return dict(response.json()["status"])

    def timed_job(self, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        start = time.perf_counter()
        task = self.trigger(body)
        while True:
            status = self.status(task)
            if status["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.02)
        wall = time.perf_counter() - start
        if status["status"] != "completed":
            raise RuntimeError(f"job {task} ended {status['status']}: {status.get('error')}")
        return wall, status


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(db_url: str, lake: Path, work: Path, conf: dict[str, str]) -> ServiceBench:
    port = _free_port()
    env = {
        **os.environ,
        "TAGSYS_DB_URL": db_url,
        "TAGSYS_LAKE_URI": str(lake),
        "TAGSYS_DATA_DIR": str(work),
        "TAGSYS_SPARK_CONF": json.dumps(conf),
        "TAGSYS_LOG_LEVEL": "WARNING",
    }
    log = (work / "service.log").open("wb")
    command = [sys.executable, "-m", "tagsys.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited: see {work / 'service.log'}")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return ServiceBench(url, process)
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the service did not start within 300 s")


def _latencies(url: str, stop: threading.Event, task: str) -> dict[str, list[float]]:
    """Alternate status and list requests until `stop`; milliseconds each."""
    seen: dict[str, list[float]] = {"status": [], "list": []}
    paths = {"status": f"/api/v1/tasks/{task}/status", "list": "/api/v1/tasks?limit=50"}
    with requests.Session() as session:
        while not stop.is_set():
            for name, path in paths.items():
                start = time.perf_counter()
                session.get(url + path, timeout=60).raise_for_status()
                seen[name].append((time.perf_counter() - start) * 1000)
            time.sleep(0.01)
    return seen


def _p99(values: list[float]) -> float:
    return quantiles(values, n=100)[98] if len(values) >= 2 else (values[0] if values else 0.0)


def run_service_benchmark(
    users: int, tags: int, db_url: str, work: Path, seed: int, as_of: Any, conf: dict[str, str]
) -> dict[str, Any]:
    lake, _ = ensure_lake(users, seed, as_of)
    store.recreate(db_url)
    store.load_tags(db_url, bench_tags(tags, 7, as_of))
    result: dict[str, Any] = {"users": users, "tags": tags, "phases": {}, "latency_ms": {}}
    result["load_before"] = os.getloadavg()
    started = time.perf_counter()
    service = start_service(db_url, lake, work, conf)
    result["phases"]["service_start"] = round(time.perf_counter() - started, 2)
    try:
        _measure(service, result, as_of, users)
    finally:
        service.process.send_signal(signal.SIGTERM)
        service.process.wait(120)
        store.drop(db_url)
    result["load_after"] = os.getloadavg()
    result["targets_met"] = {
        name: result["phases"].get(name, result["latency_ms"].get(name, 1e9)) < limit
        for name, limit in TARGETS.items()
    }
    return result


def _measure(service: ServiceBench, result: dict[str, Any], as_of: Any, population: int) -> None:
    day = as_of.isoformat()
    stop = threading.Event()
    seen: dict[str, list[float]] = {}
    first_task = service.trigger({"mode": "task-all", "as_of": day})
    watcher = threading.Thread(
        target=lambda: seen.update(_latencies(service.url, stop, first_task))
    )
    watcher.start()
    start = time.perf_counter()
    while service.status(first_task)["status"] not in ("completed", "failed", "cancelled"):
        time.sleep(0.02)
    result["phases"]["first_run"] = round(time.perf_counter() - start, 2)
    stop.set()
    watcher.join()
    for name, values in seen.items():
        result["latency_ms"][f"{name}_p50_ms"] = round(median(values), 1)
        result["latency_ms"][f"{name}_p99_ms"] = round(_p99(values), 1)
        result["latency_ms"][f"{name}_requests"] = len(values)
    unchanged = [service.timed_job({"mode": "task-all", "as_of": day})[0] for _ in range(3)]
    result["phases"]["unchanged_run"] = round(median(unchanged), 2)
    result["phases"]["unchanged_runs"] = [round(v, 2) for v in unchanged]
    step = max(1, population // 1000)
    ids = [f"user_{n:06d}" for n in range(1, population + 1, step)][:1000]
    users = [
        service.timed_job({"mode": "task-users", "user_ids": ids, "as_of": day})[0]
        for _ in range(3)
    ]
    result["phases"]["task_users_1000"] = round(median(users), 2)
    result["phases"]["task_users_1000_runs"] = [round(v, 2) for v in users]


def render(result: dict[str, Any]) -> str:
    lines = [f"service benchmark: {result['users']} users x {result['tags']} tags"]
    for name, limit in TARGETS.items():
        value = result["phases"].get(name, result["latency_ms"].get(name))
        met = "met" if result["targets_met"][name] else "MISSED"
        lines.append(f"  {name:<18} {report._fmt(value):>10}  (target < {limit:g}: {met})")
    lines.append(f"  load average before {result['load_before']}, after {result['load_after']}")
    return "\n".join(lines)
