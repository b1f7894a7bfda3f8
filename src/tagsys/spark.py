"""Creating the SparkSession: Java check, interpreter pinning, and the settings the engine relies on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tagsys.errors import ConfigError, JavaMissingError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Tens of rule expressions in one projection exceed the JVM's default JIT method size
# and run interpreted, 5-8x slower (FACTS.md); Spark's docs recommend 8000 on HotSpot.
ENGINE_CONF: dict[str, str] = {
    "spark.sql.codegen.hugeMethodLimit": "8000",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    # PySpark 4 records the Python call site of every Column operation for error messages:
    # five Py4J calls each, which made compiling 50 tags' rules take 1.2 s (0.2 s without).
    "spark.python.sql.dataFrameDebugging.enabled": "false",
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
    archive: str | None = None,
) -> SparkSession:
    """Start (or reuse) the SparkSession with the engine's settings. On a cluster, `archive`
    (made by `tagsys pack`) gives the executors their Python environment."""
    java = java_version()
    shipped = executor_environment(master, archive)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    # On a terminal, Spark's stage progress bar shows how far a long phase is.
    progress = {"spark.ui.showConsoleProgress": "true"} if sys.stderr.isatty() else {}
    settings = {
        **ENGINE_CONF,
        **progress,
        **_driver_java_options(master, java),
        **_local_defaults(master),
        **shipped,
        **(conf or {}),
    }
    if "spark.archives" in shipped and conf and conf.get("spark.archives"):
        settings["spark.archives"] = f"{conf['spark.archives']},{shipped['spark.archives']}"
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


def _driver_java_options(master: str, java: str = "") -> dict[str, str]:
    """Spark's log configuration and class-data sharing (`class_data_sharing`); in local mode
    also the throughput collector: every task runs in this JVM, and G1's concurrent work
    competes with them for the few cores (measured: a cold unchanged re-run of 1M users,
    2 cores, 2-6 s faster)."""
    config = Path(__file__).with_name("config") / "log4j2.properties"
    options = [f"-Dlog4j2.configurationFile=file:{config}", *class_data_sharing(java)]
    if master.startswith("local"):
        options.append("-XX:+UseParallelGC")
    return {"spark.driver.extraJavaOptions": " ".join(options)}


_CDS_MAGIC = (0xF00BABA2, 0xF00BABA8)  # a static / dynamic archive's header, written last
_CDS_QUIET = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")  # its warnings would go to stdout


def class_data_sharing(java: str, folder: Path | None = None) -> list[str]:
    """JVM options that map the classes of an earlier driver JVM instead of loading them
    (measured on 2 busy cores: session start 8-9 s instead of 11-13, first action 3-4 s
    instead of 7-10). The first JVM of a Java + Spark installation dumps its loaded classes
    into a cache file as it exits (in the background, after this process is gone); later
    ones map it. A stale or damaged archive is ignored by the JVM (`-Xshare:auto`)."""
    major = re.search(r'version "(\d+)', java)
    if major is None or int(major.group(1)) < 13:
        return []  # dynamic archives came with Java 13; Spark 3.5 still runs on Java 8/11
    try:
        folder = folder or _cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"driver-{_installation_key(java)}.jsa"
        if final.is_file() or _promote_finished_dump(final):
            return [f"-XX:SharedArchiveFile={final}", *_CDS_QUIET]
        if any(folder.glob(f"{final.stem}.*.tmp")):
            return []  # another JVM is dumping it now
        dump = final.with_name(f"{final.stem}.{os.getpid()}.tmp")
        return [f"-XX:ArchiveClassesAtExit={dump}", *_CDS_QUIET]
    except OSError:  # no writable cache folder: start without it
        return []


def _cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tagsys" / "cds"


def _installation_key(java: str) -> str:
    """Which Java and which Spark jars an archive belongs to."""
    import hashlib

    import pyspark

    jars = Path(pyspark.__file__).resolve().parent / "jars"
    stamp = f"{java}|{pyspark.__version__}|{jars}|{jars.stat().st_mtime if jars.is_dir() else 0}"
    return hashlib.sha1(stamp.encode()).hexdigest()[:16]


def _promote_finished_dump(final: Path) -> bool:
    """Rename a finished dump to `final` (a dump's header, with its magic, is written last);
    remove dumps that never finished."""
    import time

    promoted = False
    for dump in sorted(final.parent.glob(f"{final.stem}.*.tmp")):
        with dump.open("rb") as f:
            magic = int.from_bytes(f.read(4), "little")
        if magic in _CDS_MAGIC and not promoted:
            os.replace(dump, final)
            promoted = True
        elif magic in _CDS_MAGIC or time.time() - dump.stat().st_mtime > 600:
            dump.unlink(missing_ok=True)  # a second finished dump, or one that never finished
    return promoted


def executor_environment(master: str, archive: str | None) -> dict[str, str]:
    """The settings that make a cluster's executors run the packed environment `archive`:
    Spark unpacks it as `tagsys_env` in each executor's folder, and PySpark starts the
    executors' Python as `PYSPARK_PYTHON` (read from the driver's environment when the session
    is made from Python; `spark.pyspark.python` for spark-submit). Local masters use this
    process's interpreter and ignore it."""
    from tagsys.pack import ENV_NAME, EXECUTOR_PYTHON

    if not archive or master.startswith("local"):
        return {}
    if "://" not in archive and not Path(archive).is_file():
        raise ConfigError(
            f"the executors' environment {archive} (spark_archive) does not exist: build it "
            "with `tagsys pack --output PATH`, or unset TAGSYS_SPARK_ARCHIVE"
        )
    location = archive if "://" in archive else str(Path(archive).resolve())
    os.environ["PYSPARK_PYTHON"] = EXECUTOR_PYTHON
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return {
        "spark.archives": f"{location}#{ENV_NAME}",
        "spark.pyspark.python": EXECUTOR_PYTHON,
        "spark.pyspark.driver.python": os.environ["PYSPARK_DRIVER_PYTHON"],
    }


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
    """Send the product's code to the executors of a cluster (any master but local). With a
    packed environment too: the driver's own code wins, so both sides run the same version."""
    session.sparkContext.addPyFile(str(package_zip()))


def _local_defaults(master: str) -> dict[str, str]:
    """In local mode, Spark's 200 shuffle partitions cost more in task overhead than they
    save; a few per core are enough (adaptive execution still splits skewed ones)."""
    if not master.startswith("local"):
        return {}
    cores = os.cpu_count() or 2
    return {"spark.sql.shuffle.partitions": str(max(4, 4 * cores))}


EXECUTOR_MODULES = ("tagsys.engine.io", "sqlalchemy", "pymysql", "pyarrow")
"""What a run's executor code imports (reading and writing `user_tags`, Arrow batches)."""


def _probe_executor(_: Iterable[int]) -> Iterator[tuple[str, str, str]]:
    """On an executor: its host, Python version and environment prefix, after importing what
    a run's tasks import (an ImportError here is what a run would hit)."""
    import importlib
    import socket

    for name in EXECUTOR_MODULES:
        importlib.import_module(name)
    yield socket.gethostname(), sys.version.split()[0], sys.prefix


def executor_python(session: SparkSession) -> str:
    """Which Python the executors run, checked by importing the run's modules on each core;
    ConfigError saying how to give them the product if that fails."""
    context = session.sparkContext
    slots = max(1, context.defaultParallelism)
    try:
        found = set(
            context.parallelize(range(slots), slots).mapPartitions(_probe_executor).collect()
        )
    except Exception as exc:  # py4j/pyspark errors carry the executor's traceback as text
        missing = _MISSING_MODULE.findall(str(exc))
        what = f"cannot import {missing[-1]}" if missing else f"failed: {_first_line(exc)}"
        raise ConfigError(
            f"the Spark executors' Python {what}. Build their environment with `tagsys pack "
            "--output PATH` and set TAGSYS_SPARK_ARCHIVE=PATH (see README, Running on a cluster)"
        ) from exc
    versions = sorted({version for _, version, _ in found})
    prefixes = sorted({prefix for _, _, prefix in found})
    hosts = sorted({host for host, _, _ in found})
    shown = ", ".join(prefixes[:3]) + (f" (+{len(prefixes) - 3})" if len(prefixes) > 3 else "")
    return (
        f"executors' Python {'/'.join(versions)} on {len(hosts)} host(s), "
        f"{len(prefixes)} environment(s): {shown}"
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")
