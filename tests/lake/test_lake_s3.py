"""Discovery on s3:// against moto's in-process S3 server (needs the `moto[server]` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from tagsys.errors import LakeError
from tagsys.lake.catalog import LakeCatalog
from tagsys.lake.filesystem import S3Options, open_root

moto_server = pytest.importorskip("moto.server", reason="needs moto[server]")

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
