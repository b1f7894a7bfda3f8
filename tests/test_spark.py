"""Creating the SparkSession (JVM options, the Java check) and shipping the code to executors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from tagsys.errors import JavaMissingError
from tagsys.spark import java_version, package_zip


def test_package_zip_is_importable_without_the_installed_package(tmp_path: Path) -> None:
    archive = package_zip(str(tmp_path))
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]; "
        "import tagsys.tagsets as m, tagsys.settings as s; "
        "assert m.__file__.startswith(sys.argv[1]), m.__file__; "
        "assert s.env_file_values('local')['spark_master'] == 'local[*]'"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(archive)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


def test_missing_java_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", "/nonexistent/java")
    with pytest.raises(JavaMissingError, match="Java 17"):
        java_version()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(JavaMissingError, match="openjdk-17-jre-headless"):
        java_version()


def test_local_sessions_run_the_throughput_collector(spark: SparkSession) -> None:
    beans = spark._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()  # type: ignore[union-attr]
    names = {bean.getName() for bean in beans}
    assert names == {"PS Scavenge", "PS MarkSweep"}, names
    options = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions") or ""
    assert "log4j2.configurationFile" in options


def test_a_cluster_master_runs_the_packed_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tagsys.errors import ConfigError
    from tagsys.spark import executor_environment

    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    archive = tmp_path / "env.tar.gz"
    with pytest.raises(ConfigError, match="tagsys pack"):
        executor_environment("spark://host:7077", str(archive))
    archive.write_bytes(b"")

    assert executor_environment("local[2]", str(archive)) == {}
    conf = executor_environment("yarn", str(archive))

    assert conf["spark.archives"] == f"{archive}#tagsys_env"
    assert conf["spark.pyspark.python"] == "./tagsys_env/bin/python"
    import os

    assert os.environ["PYSPARK_PYTHON"] == "./tagsys_env/bin/python"
    remote = executor_environment("k8s://https://api:443", "s3a://bucket/env.tar.gz")
    assert remote["spark.archives"] == "s3a://bucket/env.tar.gz#tagsys_env"


def test_health_reports_the_executors_python(spark: SparkSession) -> None:
    from tagsys.spark import executor_python

    report = executor_python(spark)

    assert report.startswith(f"executors' Python {sys.version.split()[0]} on 1 host(s)")
    assert sys.prefix in report


def test_class_data_sharing_dumps_once_then_maps_the_archive(tmp_path: Path) -> None:
    from tagsys.spark import class_data_sharing, java_version

    java = java_version()
    assert class_data_sharing('openjdk version "11.0.2"', tmp_path) == []  # Java 13+ only
    assert class_data_sharing('java version "1.8.0_402"', tmp_path) == []

    first = class_data_sharing(java, tmp_path)
    dump = Path(first[0].removeprefix("-XX:ArchiveClassesAtExit="))
    assert first[0].startswith("-XX:ArchiveClassesAtExit=") and dump.suffix == ".tmp"
    done = subprocess.run(["java", *first, "-version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "cds" not in done.stdout, done.stdout + done.stderr

    second = class_data_sharing(java, tmp_path)
    archive = second[0].removeprefix("-XX:SharedArchiveFile=")
    assert archive.endswith(".jsa") and not dump.exists()
    mapped = subprocess.run(
        ["java", f"-XX:SharedArchiveFile={archive}", "-Xshare:on", "-version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert mapped.returncode == 0, mapped.stdout + mapped.stderr


def test_an_unfinished_dump_is_left_alone(tmp_path: Path) -> None:
    from tagsys.spark import class_data_sharing

    java = 'openjdk version "17.0.15"'
    dump = Path(class_data_sharing(java, tmp_path)[0].split("=", 1)[1])
    dump.write_bytes(b"\0" * 64)  # being written: the header comes last

    assert class_data_sharing(java, tmp_path) == []
    assert dump.exists()
