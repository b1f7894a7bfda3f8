"""A Spark standalone cluster on 127.0.0.1 from the installed PySpark: one master, N workers.

Every process is started in its own process group and stopped (SIGTERM, then SIGKILL) on
exit, also when starting failed halfway. The daemons get an environment without this virtual
environment (no VIRTUAL_ENV, PYTHONPATH or PYSPARK_* and its bin/ off PATH), so nothing they
start can import the product unless the job ships it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bare_environment() -> dict[str, str]:
    """This process's environment without the virtual environment or any PySpark pinning."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"} and not k.startswith("PYSPARK_")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["SPARK_HOME"] = str(SPARK_HOME)
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["SPARK_NO_DAEMONIZE"] = "1"
    return env


@dataclass
class StandaloneCluster:
    folder: Path
    workers: int = 2
    cores_per_worker: int = 1
    memory_per_worker: str = "2g"
    port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def work_dir(self, index: int) -> Path:
        return self.folder / f"worker{index}"

    def __enter__(self) -> StandaloneCluster:
        """Start the daemons and wait until every worker has registered."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the master and the workers without waiting (they start while the caller
        prepares its data); `wait_ready` waits for them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._start(
                "master",
                "org.apache.spark.deploy.master.Master",
                ["--host", "127.0.0.1", "--port", str(self.port)],
                ["--webui-port", str(self.ui_port)],
            )
            for index in range(self.workers):
                self.work_dir(index).mkdir(parents=True, exist_ok=True)
                self._start(
                    f"worker{index}",
                    "org.apache.spark.deploy.worker.Worker",
                    [self.master_url, "--host", "127.0.0.1"],
                    [
                        "--cores",
                        str(self.cores_per_worker),
                        "--memory",
                        self.memory_per_worker,
                        "--work-dir",
                        str(self.work_dir(index)),
                        "--webui-port",
                        str(free_port()),
                    ],
                )
        except BaseException:
            self.stop()
            raise

    def wait_ready(self) -> None:
        """Wait until the master counts every worker alive (a worker retries its master)."""
        try:
            self._wait(
                lambda state: state.get("aliveworkers") == self.workers,
                f"{self.workers} workers to register",
            )
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def state(self) -> dict[str, object]:
        """The master's JSON status (workers, running and completed applications)."""
        url = f"http://127.0.0.1:{self.ui_port}/json/"
        with urllib.request.urlopen(url, timeout=5) as response:
            state: dict[str, object] = json.loads(response.read())
            return state

    def finished_state(self, applications: int, timeout: float = 30.0) -> dict[str, object]:
        """The master's state once it lists `applications` completed ones (an application's
        end reaches the master a moment after its driver exits), or as it is at `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            done = state.get("completedapps")
            if (isinstance(done, list) and len(done) >= applications) or (
                time.monotonic() > deadline
            ):
                return state
            time.sleep(0.5)

    def _start(self, name: str, main: str, args: list[str], options: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), main, *args, *options],
            env=bare_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.folder,
        )
        self.processes.append(process)

    def _wait(self, ready: Callable[[dict[str, object]], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"a Spark daemon exited while waiting for {what}: {self._logs()}"
                    )
            try:
                if ready(self.state()):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"timed out waiting for {what}: {self._logs()}")

    def _logs(self) -> str:
        return " | ".join(
            f"{p.name}: {p.read_text(errors='replace')[-800:]}"
            for p in sorted(self.folder.glob("*.log"))
        )

    def stop(self) -> None:
        """SIGTERM every process group this cluster started, then SIGKILL what is left."""
        for process in reversed(self.processes):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
