"""What `--additional-python-modules` installs on Glue: the product's wheel and every
dependency it needs that Glue does not provide, pinned to the versions tested here.

Glue's pip runs with `--no-deps` (the wheel declares `pyspark`, which Glue provides outside
pip's view: a resolver would download a second, different PySpark), so the list is the
whole closure, computed from this environment's installed distributions."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

from tagsys.errors import ConfigError

GLUE_PYTHON = {"6.0": "3.13", "5.1": "3.11", "5.0": "3.11"}
"""AWS Glue version -> its Python (AWS documentation, 2026-12)."""
GLUE_SPARK = {"6.0": "4.1.1", "5.1": "3.5.6", "5.0": "3.5.4"}
GLUE_PROVIDED = frozenset(
    {
        "pyspark", "py4j", "numpy", "pandas", "pyarrow", "python-dateutil", "pytz", "tzdata",
        "six", "boto3", "botocore", "s3transfer", "jmespath", "urllib3",
    }
)  # fmt: skip
"""Installed on every Glue 5/6 worker: never shipped (a second copy would shadow Glue's)."""


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def python_of(glue_version: str) -> str:
    try:
        return GLUE_PYTHON[glue_version]
    except KeyError:
        raise ConfigError(
            f"Glue version '{glue_version}' is not supported; use one of {', '.join(GLUE_PYTHON)} "
            "(--glue-version or TAGSYS_GLUE_VERSION)"
        ) from None


def pinned_dependencies(glue_version: str, root: str = "tagsys") -> list[str]:
    """`name==version` of every runtime dependency of `root` (transitively) that Glue lacks,
    with environment markers evaluated for the Glue version's Python on Linux."""
    from packaging.requirements import Requirement

    env: dict[str, Any] = {
        "python_version": python_of(glue_version),
        "python_full_version": python_of(glue_version) + ".0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    pins: dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise ConfigError(
                f"'{name}' (needed by the Glue job) is not installed here: the deploy pins what "
                "is installed; run ./scripts/install.sh first"
            ) from None
        for text in dist.requires or []:
            req = Requirement(text)
            dep = _canonical(req.name)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if dep in GLUE_PROVIDED or dep in pins:
                continue
            pins[dep] = distribution(dep).version if _installed(dep) else ""
            todo.append(dep)
    missing = sorted(d for d, v in pins.items() if not v)
    if missing:
        raise ConfigError(
            f"the Glue job needs {', '.join(missing)}, not installed here: "
            "run ./scripts/install.sh (the deploy pins the versions installed here)"
        )
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def _installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True
