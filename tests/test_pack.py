"""`tagsys pack`: a relocatable environment whose interpreter sees only what the archive holds."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tagsys.cli import main
from tagsys.pack import SUPPLIED_BY_SPARK, build, canonical, default_python, runtime_distributions


def test_runtime_distributions_are_the_closure_without_spark() -> None:
    names = {canonical(d.metadata["Name"]) for d in runtime_distributions()}

    assert {"tagsys", "sqlalchemy", "pymysql", "pyarrow", "pandas", "pydantic"} <= names
    assert {"typing-extensions", "python-dateutil"} <= names  # dependencies of dependencies
    assert not names & SUPPLIED_BY_SPARK
    assert not names & {"pytest", "boto3", "moto"}  # dev and optional extras stay out


def test_the_unpacked_archive_imports_the_product_from_itself(tmp_path: Path) -> None:
    result = build(tmp_path / "env.tar.gz")
    target = tmp_path / "elsewhere"
    with tarfile.open(result.archive) as tar:
        tar.extractall(target, filter="tar")
    code = (
        "import sys, sqlalchemy, pymysql, pyarrow, pandas, tagsys.engine.io, tagsys.store.writer\n"
        "for m in (sqlalchemy, pymysql, pyarrow, tagsys.engine.io):\n"
        "    assert m.__file__.startswith(sys.prefix), (m.__file__, sys.prefix)\n"
        "print(sys.prefix)"
    )
    run = subprocess.run(
        [str(target / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()) == target
    assert (target / "bin" / "python").readlink() == Path(default_python())
    assert any(d.startswith("SQLAlchemy==") for d in result.distributions)
    assert result.python == default_python() and result.size_bytes > 0


def test_pack_refuses_a_name_spark_cannot_unpack_and_a_relative_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pack", "--output", str(tmp_path / "env.zip")]) == 1
    assert "must end in .tar.gz or .tgz" in capsys.readouterr().err
    assert main(["pack", "--output", str(tmp_path / "e.tar.gz"), "--python", "python3"]) == 1
    assert "absolute path on the executors" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_interpreter_defaults_to_the_base_of_this_environment() -> None:
    base = getattr(sys, "_base_executable", sys.executable)
    assert Path(default_python()) == Path(base).absolute()
