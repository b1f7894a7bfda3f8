"""Creating the SparkSession: Java check, interpreter pinning, and the settings the engine relies on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tagsys.errors import JavaMissingError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Tens of rule expressions in one projection exceed the JVM's default JIT method size
# and run interpreted, 5-8x slower (FACTS.md); Spark's docs recommend 8000 on HotSpot.
ENGINE_CONF: dict[str, str] = {
    "spark.sql.codegen.hugeMethodLimit": "8000",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


def java_version() -> str:
    """Return the first line of `java -version`, or raise JavaMissingError."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise JavaMissingError(
            "Java was not found: Spark needs Java 17. Install it (Debian/Ubuntu: "
            "`apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    return (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else java


def create_session(
    master: str = "local[*]",
    app_name: str = "tagsys",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Start (or reuse) the SparkSession with the engine's settings."""
    java_version()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    # On a terminal, Spark's stage progress bar shows how far a long phase is.
    progress = {"spark.ui.showConsoleProgress": "true"} if sys.stderr.isatty() else {}
    settings = {
        **ENGINE_CONF,
        **progress,
        **_driver_java_options(master),
        **_local_defaults(master),
        **(conf or {}),
    }
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    if not master.startswith("local"):
        ship_package(session)
    return session


# Set for the duration of each run (and restored after, the session may be shared).
# Whole-stage code generation puts every tag's rule into one Java method: past the JVM's
# size limits it runs interpreted or fails to compile (measured: 200k users, 300 tags,
# 38 s with it, 16 s without; 50 tags, 6.1 s and 5.5 s). Without it, Spark compiles each
# projection into many small methods.
RUN_CONF: dict[str, str] = {"spark.sql.codegen.wholeStage": "false"}


_run_conf_lock = threading.Lock()
_run_conf_users: dict[int, tuple[int, dict[str, str | None]]] = {}
"""Per session: how many runs are inside `run_conf`, and the settings before the first."""


@contextmanager
def run_conf(session: SparkSession, values: Mapping[str, str]) -> Iterator[None]:
    """Set session settings for one run, then put the previous values back once no run of
    this process needs them (the service runs several at once on one session; they all ask
    for the same values)."""
    key = id(session)
    with _run_conf_lock:
        count, previous = _run_conf_users.get(key, (0, {}))
        if count == 0:
            previous = {name: session.conf.get(name, None) for name in values}
        for name, value in values.items():
            session.conf.set(name, value)
        _run_conf_users[key] = (count + 1, previous)
    try:
        yield
    finally:
        with _run_conf_lock:
            count, previous = _run_conf_users.pop(key)
            if count > 1:
                _run_conf_users[key] = (count - 1, previous)
            else:
                _restore(session, previous)


def _restore(session: SparkSession, previous: Mapping[str, str | None]) -> None:
    for name, old in previous.items():
        if old is None:
            session.conf.unset(name)
        else:
            session.conf.set(name, old)


def _driver_java_options(master: str) -> dict[str, str]:
    """Spark's log configuration; in local mode also the throughput collector: every task runs
    in this JVM, and G1's concurrent work competes with them for the few cores (measured:
    a cold unchanged re-run of 1M users, 2 cores, 2-6 s faster)."""
    config = Path(__file__).with_name("config") / "log4j2.properties"
    options = [f"-Dlog4j2.configurationFile=file:{config}"]
    if master.startswith("local"):
        options.append("-XX:+UseParallelGC")
    return {"spark.driver.extraJavaOptions": " ".join(options)}


def package_zip(target_dir: str | None = None) -> Path:
    """A zip of the tagsys package, for executors that cannot import it otherwise."""
    package = Path(__file__).resolve().parent
    folder = Path(target_dir or tempfile.mkdtemp(prefix="tagsys-"))
    archive = folder / "tagsys.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, Path("tagsys") / path.relative_to(package))
    return archive


def ship_package(session: SparkSession) -> None:
    """Send the product's code to the executors of a cluster (any master but local)."""
    session.sparkContext.addPyFile(str(package_zip()))


def _local_defaults(master: str) -> dict[str, str]:
    """In local mode, Spark's 200 shuffle partitions cost more in task overhead than they
    save; a few per core are enough (adaptive execution still splits skewed ones)."""
    if not master.startswith("local"):
        return {}
    cores = os.cpu_count() or 2
    return {"spark.sql.shuffle.partitions": str(max(4, 4 * cores))}
