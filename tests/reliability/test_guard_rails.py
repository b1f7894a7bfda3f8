"""Guard rails: no silent embedded store outside `local`, destructive modes need confirmation,
and the bulk-load privilege stays on the bulk-load connection."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tagsys.cli import main
from tagsys.demo.loader import load_seed_tags
from tagsys.errors import ConfigError
from tagsys.settings import load_settings
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade


@pytest.fixture(autouse=True)
def _no_store_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TAGSYS_DB_URL", "MYSQL_HOST", "TAGSYS_ENV", "TAG_SYSTEM_ENV"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("env", ["glue-dev", "glue-prod"])
def test_cloud_environments_refuse_the_embedded_store(env: str) -> None:
    with pytest.raises(ConfigError, match="TAGSYS_DB_URL") as caught:
        load_settings(env)
    assert f"environment '{env}'" in str(caught.value) and "MYSQL_HOST" in str(caught.value)


def test_cloud_environment_with_a_mysql_store_loads() -> None:
    settings = load_settings("glue-prod", db_url="mysql+pymysql://tagger:pw@db.internal/tags")
    assert settings.require_confirmation is True
    assert "pw" not in settings.safe_database_url


@pytest.mark.parametrize("master", ["spark://10.0.0.1:7077", "yarn", "k8s://https://k:443"])
def test_sqlite_with_a_cluster_master_is_refused(master: str, tmp_path) -> None:
    with pytest.raises(ConfigError, match="its own copy of the SQLite file"):
        load_settings("local", spark_master=master, data_dir=tmp_path)
    assert (
        load_settings("local", spark_master="local[2]", data_dir=tmp_path).spark_master
        == "local[2]"
    )


def _seeded(mariadb_url: str) -> sa.Engine:
    upgrade(mariadb_url)
    load_seed_tags(mariadb_url)
    engine = create_store_engine(mariadb_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_tags (user_id, tag_ids) VALUES ('u1', '[1]')"))
    return engine


def _counts(engine: sa.Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar()
            for t in ("user_tags", "tag_definition", "tag_rules")
        )


@pytest.mark.mariadb
@pytest.mark.parametrize("mode", ["clean-data", "init-db", "demo", "generate-data"])
def test_destructive_modes_in_production_delete_nothing_and_say_why(
    mode: str, mariadb_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = _seeded(mariadb_url)
    before = _counts(engine)

    code = main(["--env", "glue-prod", "--mode", mode, "--db-url", mariadb_url])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("Error: ") and "Traceback" not in err
    assert "glue-prod" in err and "--yes" in err and "nothing was changed" in err
    assert _counts(engine) == before
    engine.dispose()


@pytest.mark.mariadb
def test_production_runs_need_confirmation_but_dry_runs_do_not_ask(
    mariadb_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = _seeded(mariadb_url)

    code = main(["--env", "glue-prod", "--mode", "task-all", "--db-url", mariadb_url])

    assert code == 1
    assert "requires confirmation" in capsys.readouterr().err
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM tag_runs")).scalar() == 0
    engine.dispose()


def test_clean_data_on_an_s3_lake_refuses_before_deleting_tags(
    sqlite_url: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    upgrade(sqlite_url)
    load_seed_tags(sqlite_url)
    engine = create_store_engine(sqlite_url)
    before = _counts(engine)

    code = main(
        ["--mode", "clean-data", "--db-url", sqlite_url, "--lake-uri", "s3://bucket/lake", "--yes"]
    )

    assert code == 1
    assert "s3://bucket/lake" in capsys.readouterr().err
    assert _counts(engine) == before, "tags deleted although the command then failed"
    engine.dispose()


def test_init_db_does_not_overwrite_edited_tags_without_yes(
    sqlite_url: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    upgrade(sqlite_url)
    load_seed_tags(sqlite_url)
    engine = create_store_engine(sqlite_url)
    edited = '{"logic":"AND","conditions":[{"field":"age","operator":">=","value":60}]}'
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE tag_definition SET tag_name = 'VIP (ours)' WHERE tag_id = 1"))
        conn.execute(
            sa.text("UPDATE tag_rules SET rule_conditions = :r WHERE tag_id = 2"), {"r": edited}
        )
    args = ["--mode", "init-db", "--db-url", sqlite_url, "--lake-uri", str(tmp_path / "lake")]

    assert main(args) == 1
    err = capsys.readouterr().err
    assert "tag 1" in err and "tag 2" in err and "--yes" in err
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT tag_name FROM tag_definition WHERE tag_id = 1")).scalar()
            == "VIP (ours)"
        )
        assert (
            conn.execute(sa.text("SELECT rule_conditions FROM tag_rules WHERE tag_id = 2")).scalar()
            == edited
        )

    assert main([*args, "--yes"]) == 0
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT tag_name FROM tag_definition WHERE tag_id = 1")).scalar()
            != "VIP (ours)"
        )
    assert main(args) == 0, "init-db over its own content is idempotent"
    engine.dispose()


@pytest.mark.mariadb
def test_only_the_bulk_load_connection_may_load_local_files(mariadb_url: str, tmp_path) -> None:
    from tagsys.store.db import create_store_engine as engine_for

    upgrade(mariadb_url)
    data = tmp_path / "rows.csv"
    data.write_text('"u1","[]"\n')
    sql = f"LOAD DATA LOCAL INFILE '{data}' INTO TABLE user_tags FIELDS TERMINATED BY ',' ENCLOSED BY '\"' (user_id, tag_ids)"

    plain = engine_for(mariadb_url)
    with pytest.raises(sa.exc.DBAPIError), plain.begin() as conn:
        conn.exec_driver_sql(sql)
    plain.dispose()

    bulk = engine_for(mariadb_url, bulk_load=True)
    with bulk.begin() as conn:
        conn.exec_driver_sql(sql)
        assert conn.exec_driver_sql("SELECT user_id FROM user_tags").scalar() == "u1"
    bulk.dispose()
