"""Settings: precedence CLI > environment > env config file > defaults; secrets stay hidden."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tagsys.errors import ConfigError
from tagsys.settings import load_settings, misspelled_variables


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(
            ("TAGSYS_", "MYSQL_", "S3_", "TAG_SYSTEM_ENV", "SPARK_MASTER", "LOG_LEVEL")
        ):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_store_and_a_local_lake(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.env == "local"
    assert s.database_url == f"sqlite:///{tmp_path / 'data' / 'tagsys.db'}"
    assert s.lake_root == str(tmp_path / "data" / "lake")
    assert s.spark_master == "local[*]"


def test_precedence_flag_over_env_over_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGSYS_DB_URL", "mysql+pymysql://u@db.example/tag_system")
    assert load_settings("glue-dev").lake_uri == "s3://tag-system-dev-data-lake/hive"
    monkeypatch.setenv("TAGSYS_LAKE_URI", "s3://from-env/lake")
    assert load_settings("glue-dev").lake_uri == "s3://from-env/lake"
    assert load_settings("glue-dev", lake_uri="/from/flag").lake_uri == "/from/flag"


def test_seed_mysql_variables_build_the_url_without_leaking(monkeypatch) -> None:
    monkeypatch.setenv("MYSQL_HOST", "db.example")
    monkeypatch.setenv("MYSQL_PORT", "3307")
    monkeypatch.setenv("MYSQL_USER", "tag_user")
    monkeypatch.setenv("MYSQL_PASSWORD", "p@ss:word")
    monkeypatch.setenv("MYSQL_DATABASE", "tag_system")
    s = load_settings()
    assert s.database_url.startswith("mysql+pymysql://tag_user:p%40ss%3Aword@db.example:3307/")
    assert "p@ss" not in s.safe_database_url and "***" in s.safe_database_url
    assert "p@ss" not in repr(s) and "p%40ss" not in repr(s)


def test_tagsys_db_url_wins_over_mysql_variables(monkeypatch) -> None:
    monkeypatch.setenv("MYSQL_HOST", "db.example")
    monkeypatch.setenv("TAGSYS_DB_URL", "sqlite:////tmp/x.db")
    assert load_settings().database_url == "sqlite:////tmp/x.db"


def test_relative_sqlite_url_is_made_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(db_url="sqlite:///rel/t.db").database_url == (
        f"sqlite:///{tmp_path / 'rel' / 't.db'}"
    )


def test_json_valued_settings_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("TAGSYS_CHANGE_COLUMNS", '{"user_basic_info": "updated_at"}')
    monkeypatch.setenv("TAGSYS_SPARK_CONF", '{"spark.executor.memory": "4g"}')
    s = load_settings()
    assert s.change_columns == {"user_basic_info": "updated_at"}
    assert s.spark_conf == {"spark.executor.memory": "4g"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
        ({"write_batch_size": 0}, "write_batch_size"),
        ({"no_such_setting": 1}, "no_such_setting"),
        ({"log_level": "LOUD"}, "unknown log level 'LOUD'; use one of DEBUG, INFO"),
    ],
)
def test_bad_settings_say_what_and_where(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(**kwargs)


def test_log_levels_are_named_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(log_level="warning").log_level == "WARNING"
    monkeypatch.setenv("TAGSYS_LOG_LEVEL", "verbose")
    with pytest.raises(ConfigError, match="log_level: unknown log level 'verbose'"):
        load_settings()


def test_unknown_environment_and_bad_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        load_settings("qa")
    bad = tmp_path / "bad.toml"
    bad.write_text("spark_master = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings("local", config_file=bad)


def test_today_uses_the_configured_zone() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    s = load_settings(timezone="Pacific/Kiritimati")
    zone = ZoneInfo("Pacific/Kiritimati")
    before = datetime.now(zone).date()
    today = s.today()
    assert today in (before, datetime.now(zone).date())
    assert today != datetime.now(ZoneInfo("Etc/GMT+12")).date()  # 26 hours apart: never one date


def test_the_seeds_environment_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """TAG_SYSTEM_ENV, SPARK_MASTER_URL and LOG_LEVEL keep working."""
    monkeypatch.setenv("TAG_SYSTEM_ENV", "glue-dev")
    monkeypatch.setenv("TAGSYS_DB_URL", "mysql+pymysql://u:p@db.example:3306/tag_system")
    monkeypatch.setenv("SPARK_MASTER_URL", "spark://seed:7077")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    s = load_settings()
    assert (s.env, s.spark_master, s.log_level) == ("glue-dev", "spark://seed:7077", "DEBUG")
    monkeypatch.setenv("TAGSYS_ENV", "local")
    monkeypatch.setenv("TAGSYS_SPARK_MASTER", "local[1]")
    s = load_settings()
    assert (s.env, s.spark_master) == ("local", "local[1]"), "the TAGSYS_ names win"


def test_tagsys_names_win_over_seed_names_and_unrelated_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("TAGSYS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("SPARK_MASTER", "spark://not-ours:7077")  # set by Spark's own scripts
    s = load_settings()
    assert (s.log_level, s.spark_master) == ("WARNING", "local[*]")


def test_write_partitions_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGSYS_WRITE_PARTITIONS", "3")
    assert load_settings().write_partitions == 3
    monkeypatch.setenv("TAGSYS_WRITE_PARTITIONS", "0")
    with pytest.raises(ConfigError, match="write_partitions"):
        load_settings()


def test_a_misspelled_variable_is_named_with_the_setting_it_resembles(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TAGSYS_JOB_QUEUE_LIMT", "3")  # a typo: the limit stays 100
    monkeypatch.setenv("TAGSYS_DB_ULR", "mysql+pymysql://x@h/db")
    monkeypatch.setenv("TAGSYS_TEST_MYSQL_URL", "mysql+pymysql://x@h/db")  # another tool's
    with caplog.at_level("WARNING", logger="tagsys.settings"):
        settings = load_settings("local")
    assert settings.job_queue_limit == 100
    assert misspelled_variables(os.environ) == [
        ("TAGSYS_DB_ULR", "TAGSYS_DB_URL"),
        ("TAGSYS_JOB_QUEUE_LIMT", "TAGSYS_JOB_QUEUE_LIMIT"),
    ]
    warned = [r.getMessage() for r in caplog.records]
    assert (
        "TAGSYS_JOB_QUEUE_LIMT is set but is not a setting (ignored): did you mean "
        "TAGSYS_JOB_QUEUE_LIMIT?" in warned
    )
    assert not any("TAGSYS_TEST_MYSQL_URL" in w for w in warned)
