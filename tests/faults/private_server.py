"""A second, private MariaDB for destructive tests: its own port, data folder and socket,
started with `mariadb-install-db` + `mariadbd`, restarted at will, never the shared one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pymysql

from tests.faults.support import Server

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
MYSQLADMIN = shutil.which("mysqladmin") or "/usr/bin/mysqladmin"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateMariaDB:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.datadir = folder / "data"
        self.port = free_port()
        self.server = Server("127.0.0.1", self.port)
        self.process: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        self.datadir.mkdir(parents=True)
        subprocess.run(
            [
                INSTALL_DB,
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        log = (self.folder / "mariadbd.log").open("ab")
        self.process = subprocess.Popen(
            [
                MARIADBD,
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--port={self.port}",
                f"--socket={self.datadir / 's.sock'}",
                "--bind-address=127.0.0.1",
                "--user=root",
                "--local-infile=1",
                "--innodb-buffer-pool-size=64M",
                "--max-connections=500",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mariadbd exited with {self.process.returncode}: see {log.name}"
                )
            try:
                self.server.connect().close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, *, graceful: bool = True) -> None:
        if self.process is None:
            return
        if graceful:
            subprocess.run(
                [MYSQLADMIN, "-h127.0.0.1", f"-P{self.port}", "-uroot", "shutdown"],
                check=False,
                capture_output=True,
                timeout=60,
            )
        else:
            self.process.kill()
        self.process.wait(timeout=60)
        self.process = None

    def restart(self, *, graceful: bool) -> None:
        self.stop(graceful=graceful)
        self.start()
