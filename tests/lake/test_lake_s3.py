"""Discovery on s3:// against moto's in-process S3 server (`moto[server]` is a dev dependency)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from moto import server as moto_server

from tagsys.errors import LakeError
from tagsys.lake.catalog import LakeCatalog
from tagsys.lake.filesystem import S3Options, open_root
from tagsys.rules.validate import validate_rule

BUCKET = "lake-bucket"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Options]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = S3Options(
        endpoint=f"http://{host}:{port}", access_key="test", secret_key="test", region="us-east-1"
    )
    filesystem = pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        region="us-east-1",
        scheme="http",
        endpoint_override=f"{host}:{port}",
        allow_bucket_creation=True,
    )
    filesystem.create_dir(BUCKET)
    _write(filesystem, "hive/user_basic_info/part-0.parquet", {"user_id": ["u1"], "age": [30]})
    for day in ("2024-01-01", "2024-01-02"):
        _write(filesystem, f"hive/assets/dt={day}/part-0.parquet", {"user_id": ["u1"], "v": [1.0]})
    _write(filesystem, "hive/assets/_SUCCESS", None)
    try:
        yield options
    finally:
        server.stop()


def _write(filesystem: pafs.FileSystem, key: str, columns: dict[str, list[object]] | None) -> None:
    path = f"{BUCKET}/{key}"
    if columns is None:
        with filesystem.open_output_stream(path) as out:
            out.write(b"")
        return
    pq.write_table(pa.table(columns), path, filesystem=filesystem)


@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_discovers_tables_and_partitions_on_s3(s3: S3Options, scheme: str) -> None:
    catalog = LakeCatalog(f"{scheme}://{BUCKET}/hive/", s3=s3)

    assert sorted(catalog.tables) == ["assets", "user_basic_info"]
    assert catalog.schema().resolve("age").data_type == "bigint"
    snapshot = catalog.snapshot_for("assets", date(2024, 1, 5))
    assert snapshot.paths == (f"{scheme}://{BUCKET}/hive/assets/dt=2024-01-02",)


def test_snapshot_paths_are_readable_with_pyarrow(s3: S3Options) -> None:
    catalog = LakeCatalog(f"s3://{BUCKET}/hive", s3=s3)
    root = open_root(catalog.root or "", s3)

    path = catalog.snapshot_for("assets", date(2024, 1, 1)).paths[0].removeprefix("s3://")
    table = pq.read_table(path, filesystem=root.filesystem)

    assert table.to_pylist() == [{"user_id": "u1", "v": 1.0}]


def test_missing_prefix_is_a_lake_error(s3: S3Options) -> None:
    with pytest.raises(LakeError, match=f"s3://{BUCKET}/nothing"):
        _ = LakeCatalog(f"s3://{BUCKET}/nothing", s3=s3).tables


@pytest.mark.spark
def test_the_original_systems_lake_as_spark_wrote_it_under_a_warehouse_prefix(
    s3: S3Options, spark: Any, tmp_path: Path
) -> None:
    """`s3a://test-data-lake/warehouse/<table>/`: part-*.snappy.parquet, _SUCCESS, .crc files,
    and the generator's types; `computed_date` is in two tables."""
    from tests.engine.original_lake import write_original_lake

    local = write_original_lake(spark, tmp_path, users=20)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"_SUCCESS", "._SUCCESS.crc"}
    assert any(p.name.startswith("part-") and p.name.endswith(".snappy.parquet") for p in files)
    filesystem = open_root(f"s3://{BUCKET}", s3).filesystem
    for path in files:
        key = f"{BUCKET}/test-data-lake/warehouse/{path.relative_to(local)}"
        with filesystem.open_output_stream(key) as out:
            out.write(path.read_bytes())

    catalog = LakeCatalog(f"s3a://{BUCKET}/test-data-lake/warehouse/", s3=s3)
    schema = catalog.schema()

    assert sorted(catalog.tables) == [
        "user_activity_summary",
        "user_asset_summary",
        "user_basic_info",
    ]
    types = {name: schema.resolve(name).data_type for name in ("age", "risk_score")}
    types |= {name: schema.resolve(name).data_type for name in ("cash_balance", "created_time")}
    assert types == {
        "age": "bigint",
        "risk_score": "bigint",
        "cash_balance": "double",
        "created_time": "string",
    }
    ambiguous = {
        "logic": "AND",
        "conditions": [
            {"field": "computed_date", "operator": "=", "value": "2025-01-15", "type": "date"}
        ],
    }
    problems = validate_rule(ambiguous, schema)
    assert [p.location for p in problems] == ["conditions[0].field"]
    assert "user_activity_summary.computed_date, user_asset_summary.computed_date" in (
        problems[0].message
    )
    qualified = json.loads(
        json.dumps(ambiguous).replace('"computed_date"', '"user_asset_summary.computed_date"')
    )
    assert validate_rule(qualified, schema) == []


# --- Spark's side: S3A settings, and the error when the connector is missing -------------


def test_s3a_settings_come_from_the_products_s3_settings() -> None:
    from tagsys.lake.s3a import s3a_conf, spark_s3a_conf

    options = S3Options(
        endpoint="http://127.0.0.1:9000", access_key="AK", secret_key="SK", region="eu-west-1"
    )

    assert s3a_conf(options) == {
        "fs.s3a.endpoint": "http://127.0.0.1:9000",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.endpoint.region": "eu-west-1",
        "fs.s3a.access.key": "AK",
        "fs.s3a.secret.key": "SK",
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    }
    assert spark_s3a_conf(S3Options(region="us-east-1")) == {
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1"
    }
    assert spark_s3a_conf(None) == {}  # AWS's default chain (instance profile, ...)


@pytest.mark.spark
def test_hadoop_version_is_read_from_the_installed_spark_jars(spark: Any) -> None:
    from tagsys.lake.s3a import hadoop_version

    running = spark.sparkContext._jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    assert hadoop_version() == running


@pytest.mark.spark
@pytest.mark.parametrize("scheme", ["s3a", "s3"])
def test_without_the_s3a_connector_the_error_names_the_matching_jars(
    spark: Any, s3: S3Options, scheme: str
) -> None:
    from tagsys.errors import ConfigError
    from tagsys.lake.s3a import prepare_session

    version = spark.sparkContext._jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    with pytest.raises(ConfigError) as caught:
        prepare_session(spark, f"{scheme}://{BUCKET}/hive", s3)

    message = str(caught.value)
    assert f"Spark cannot read the lake {scheme}://{BUCKET}/hive" in message
    assert f'"spark.jars.packages": "org.apache.hadoop:hadoop-aws:{version}"' in message
    assert f"hadoop-aws-{version}.jar" in message and "software.amazon.awssdk:bundle" in message
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    assert hadoop.get("fs.s3a.endpoint") == s3.endpoint  # the settings reached Spark


@pytest.mark.spark
def test_an_s3a_lake_from_the_seed_variables_is_discovered_and_a_run_says_what_spark_lacks(
    spark: Any,
    s3: S3Options,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tagsys.api import TagSystemAPI
    from tagsys.cli import main

    monkeypatch.setenv("S3_ENDPOINT", s3.endpoint or "")
    monkeypatch.setenv("S3_ACCESS_KEY", "test")
    monkeypatch.setenv("S3_SECRET_KEY", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("TAGSYS_DATA_DIR", str(tmp_path))
    lake = f"s3a://{BUCKET}/hive"
    with TagSystemAPI("local", lake_uri=lake, spark=spark) as api:
        assert sorted(api.catalog.tables) == ["assets", "user_basic_info"]
        snapshot = api.catalog.snapshot_for("assets", date(2024, 1, 1))
        assert snapshot.paths == (f"{lake}/assets/dt=2024-01-01",)
        assert api.catalog.schema().resolve("v").data_type == "double"

    code = main(["--mode", "task-all", "--lake-uri", lake, "--as-of", "2024-01-02"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"Error: Spark cannot read the lake {lake}: the S3A connector"), err
    assert "Traceback" not in err
