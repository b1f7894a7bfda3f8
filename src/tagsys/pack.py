"""`tagsys pack`: the product and its Python dependencies as one archive for Spark executors.

The archive is a relocatable virtual environment, built offline from the packages installed
next to the running tagsys (their files as pip installed them, so the executors get exactly
the driver's versions):

    bin/python -> the interpreter the executors run (not packed; it must exist there)
    pyvenv.cfg    isolates it from that interpreter's own site-packages
    lib/pythonX.Y/site-packages/   tagsys + its runtime dependencies, without PySpark/py4j

PySpark and py4j are left out: every Spark installation puts its own on the executors'
`PYTHONPATH`, and a second copy could disagree with the cluster's JVM side. Spark unpacks the
archive given in `spark.archives` (`ARCHIVE#tagsys_env`) into each executor's working folder,
and `PYSPARK_PYTHON=./tagsys_env/bin/python` makes the executors use it (see `tagsys.spark`).
"""

from __future__ import annotations

import io
import os
import re
import sys
import tarfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

from tagsys.errors import ConfigError, UsageError

ENV_NAME = "tagsys_env"
"""The folder the archive unpacks to in an executor's working directory (`ARCHIVE#tagsys_env`)."""
EXECUTOR_PYTHON = f"./{ENV_NAME}/bin/python"
SUPPLIED_BY_SPARK = frozenset({"pyspark", "py4j"})
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_ONLY = re.compile(r";.*\bextra\s*==")


@dataclass(frozen=True)
class PackResult:
    archive: Path
    python: str
    distributions: tuple[str, ...]
    size_bytes: int
    seconds: float

    def render(self) -> str:
        return (
            f"packed {len(self.distributions)} distributions into {self.archive} "
            f"({self.size_bytes / 1e6:.1f} MB, {self.seconds:.1f} s); executors run {self.python}.\n"
            f"Use it: TAGSYS_SPARK_ARCHIVE={self.archive} (or spark-submit --archives "
            f"{self.archive}#{ENV_NAME} with PYSPARK_PYTHON={EXECUTOR_PYTHON})"
        )


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(root: str = "tagsys") -> list[metadata.Distribution]:
    """`root` and the installed distributions it needs at run time (no extras), minus the ones
    Spark supplies. A requirement whose marker excludes this platform is simply not installed."""
    seen: dict[str, metadata.Distribution] = {}
    pending = [root]
    while pending:
        name = canonical(pending.pop())
        if name in seen or name in SUPPLIED_BY_SPARK:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name == canonical(root):
                raise ConfigError(f"{root} is not installed here: nothing to pack") from None
            continue  # an optional or platform-specific requirement that is not installed
        seen[name] = dist
        for requirement in dist.requires or []:
            if _EXTRA_ONLY.search(requirement):
                continue
            match = _REQUIREMENT_NAME.match(requirement)
            if match:
                pending.append(match.group(1))
    return sorted(seen.values(), key=lambda d: canonical(d.metadata["Name"]))


def default_python() -> str:
    """The interpreter of the running environment without it (a venv's base interpreter)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return str(Path(base).absolute())


def build(output: Path, python: str | None = None) -> PackResult:
    """Write the archive to `output` (`.tar.gz`); `python` is the executors' interpreter
    (default: this environment's base interpreter, which must be at that path on them)."""
    started = time.monotonic()
    if not output.name.endswith((".tar.gz", ".tgz")):
        raise UsageError(f"the pack's file name must end in .tar.gz or .tgz, not '{output.name}'")
    python = python or default_python()
    if not os.path.isabs(python):
        raise UsageError(f"--python must be an absolute path on the executors, not '{python}'")
    dists = runtime_distributions()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
        _add_interpreter(tar, python, version)
        site = f"lib/python{version}/site-packages"
        for dist in dists:
            _add_distribution(tar, dist, site)
    partial.replace(output)
    return PackResult(
        archive=output.resolve(),
        python=python,
        distributions=tuple(f"{d.metadata['Name']}=={d.version}" for d in dists),
        size_bytes=output.stat().st_size,
        seconds=time.monotonic() - started,
    )


def _add_interpreter(tar: tarfile.TarFile, python: str, version: str) -> None:
    """bin/python (a link to the executors' interpreter) and the pyvenv.cfg that isolates it."""
    home = str(PurePosixPath(python).parent)
    config = (
        f"home = {home}\ninclude-system-site-packages = false\nversion = {version}\n"
        f"executable = {python}\n"
    ).encode()
    _add_bytes(tar, "pyvenv.cfg", config)
    _add_link(tar, "bin/python", python)
    for alias in ("python3", f"python{version}"):
        _add_link(tar, f"bin/{alias}", "python")


def _add_distribution(tar: tarfile.TarFile, dist: metadata.Distribution, site: str) -> None:
    """The distribution's files under site-packages; tagsys from its source folder (an
    editable install's record lists only a path hook)."""
    if canonical(dist.metadata["Name"]) == "tagsys":
        import tagsys

        package = Path(tagsys.__file__).resolve().parent
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, f"{site}/tagsys/{path.relative_to(package).as_posix()}")
        return
    for file in dist.files or []:
        relative = PurePosixPath(file.as_posix())
        if ".." in relative.parts or relative.name.startswith("__editable__"):
            continue  # console scripts and the like live outside site-packages
        source = Path(str(dist.locate_file(file)))
        if source.is_file():
            tar.add(source, f"{site}/{relative}", recursive=False)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o755
    info.mtime = int(time.time())
    tar.addfile(info)
