"""Spark's side of an S3 lake: the S3A settings from the product's S3 settings, and a clear
error naming the jars to add when Spark has no S3A connector (PySpark from PyPI has none).

Discovery (tables, partitions, schemas) does not need this: it reads the lake with pyarrow
(`tagsys.lake.filesystem`). Spark reads the Parquet files of a run through Hadoop's S3A.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from tagsys.errors import ConfigError
from tagsys.lake.filesystem import S3_SCHEMES, S3Options

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

S3A_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"
_HADOOP_JAR = re.compile(r"^hadoop-(?:client-api|common)-(\d+\.\d+\.\d+)\.jar$")


def s3a_conf(options: S3Options) -> dict[str, str]:
    """`fs.s3a.*` Hadoop settings (without the `spark.hadoop.` prefix) for `options`.

    An endpoint (MinIO, moto, a VPC endpoint) gets path-style access; `http://` turns TLS off.
    Keys given explicitly are used as they are (SimpleAWSCredentialsProvider); otherwise S3A's
    default chain (instance profile, environment, ...) applies.
    """
    conf: dict[str, str] = {}
    if options.endpoint:
        endpoint = options.endpoint
        conf["fs.s3a.endpoint"] = endpoint
        conf["fs.s3a.path.style.access"] = "true"
        conf["fs.s3a.connection.ssl.enabled"] = str(not endpoint.startswith("http://")).lower()
    if options.region:
        conf["fs.s3a.endpoint.region"] = options.region
    if options.access_key and options.secret_key:
        conf["fs.s3a.access.key"] = options.access_key
        conf["fs.s3a.secret.key"] = options.secret_key
        provider = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        if options.session_token:
            conf["fs.s3a.session.token"] = options.session_token
            provider = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
        conf["fs.s3a.aws.credentials.provider"] = provider
    return conf


def spark_s3a_conf(options: S3Options | None) -> dict[str, str]:
    """The same settings as Spark session settings (`spark.hadoop.fs.s3a.*`)."""
    return {f"spark.hadoop.{k}": v for k, v in s3a_conf(options or S3Options()).items()}


def hadoop_version(spark_home: Path | None = None) -> str | None:
    """The Hadoop client version Spark bundles, read from its jars folder
    (`hadoop-client-api-X.Y.Z.jar` or `hadoop-common-X.Y.Z.jar`); None if not found."""
    home = spark_home or _spark_home()
    if home is None or not (home / "jars").is_dir():
        return None
    for jar in sorted(p.name for p in (home / "jars").iterdir()):
        match = _HADOOP_JAR.match(jar)
        if match:
            return match.group(1)
    return None


def _spark_home() -> Path | None:
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    try:
        import pyspark
    except ImportError:
        return None
    return Path(pyspark.__file__).resolve().parent


def connector_coordinates(version: str) -> tuple[str, str]:
    """(hadoop-aws coordinates, the AWS SDK bundle artifact its POM depends on)."""
    major, minor = (int(x) for x in version.split(".")[:2])
    sdk = (
        "software.amazon.awssdk:bundle"
        if (major, minor) >= (3, 4)
        else "com.amazonaws:aws-java-sdk-bundle"
    )
    return f"org.apache.hadoop:hadoop-aws:{version}", sdk


def missing_connector(uri: str, version: str | None) -> ConfigError:
    """The error for a lake Spark cannot open, naming exactly what to add."""
    if version is None:
        what = (
            "add org.apache.hadoop:hadoop-aws (the version of Spark's own Hadoop jars) to "
            "spark.jars.packages"
        )
    else:
        aws, sdk = connector_coordinates(version)
        what = (
            f"this Spark bundles Hadoop {version}: set TAGSYS_SPARK_CONF="
            f'\'{{"spark.jars.packages": "{aws}"}}\' (needs access to Maven Central; it brings '
            f"the {sdk} jar its POM names), or put hadoop-aws-{version}.jar and that {sdk} "
            "jar into spark.jars or Spark's jars folder"
        )
    return ConfigError(
        f"Spark cannot read the lake {uri}: the S3A connector ({S3A_CLASS}) is not on Spark's "
        f"classpath; {what}. On EMR and AWS Glue, s3:// works as it is"
    )


def prepare_session(session: SparkSession, uri: str, options: S3Options | None) -> None:
    """Make `session` able to read the S3 lake `uri`, or raise the error naming the jars.

    Sets the S3A settings on the session's Hadoop configuration (a shared session may have
    been made without them), maps `s3://` to S3A where nothing else serves it (EMR's and
    Glue's own s3:// file system is kept), and checks that the file system class loads.
    """
    scheme = urlparse(uri).scheme
    if scheme not in S3_SCHEMES:
        return
    hadoop = session.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_conf(options or S3Options()).items():
        hadoop.set(key, value)
    if _file_system_loads(session, scheme):
        return
    if scheme != "s3a" and _file_system_loads(session, "s3a"):
        hadoop.set(f"fs.{scheme}.impl", S3A_CLASS)
        return
    raise missing_connector(uri, hadoop_version())


def _file_system_loads(session: SparkSession, scheme: str) -> bool:
    jvm = session.sparkContext._jvm
    hadoop = session.sparkContext._jsc.hadoopConfiguration()
    try:
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, hadoop)  # type: ignore[union-attr]
    except Exception:  # py4j: UnsupportedFileSystemException, ClassNotFoundException, ...
        return False
    return True
