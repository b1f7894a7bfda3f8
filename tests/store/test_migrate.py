from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tagsys.errors import StoreError
from tagsys.store import migrate, writer
from tagsys.store.db import create_store_engine
from tagsys.store.schema import metadata

TABLES = {"tag_category", "tag_definition", "tag_rules", "user_tags", "tag_jobs", "tag_runs"}


def test_upgrade_from_empty_reaches_head_with_every_table(store_url: str) -> None:
    assert migrate.current_revision(store_url) is None

    assert migrate.upgrade(store_url) == migrate.head_revision()

    assert migrate.current_revision(store_url) == migrate.head_revision()
    engine = create_store_engine(store_url)
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_user_id_is_unique_under_the_seed_key_name(migrated_url: str, engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    unique = inspector.get_unique_constraints("user_tags")
    indexes = [i for i in inspector.get_indexes("user_tags") if i.get("unique")]
    keys = {(u["name"], tuple(u["column_names"])) for u in unique}
    keys |= {(i["name"], tuple(i["column_names"])) for i in indexes}
    assert ("uk_user_id", ("user_id",)) in keys
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_tags (user_id, tag_ids) VALUES ('u1', '[]')"))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_tags (user_id, tag_ids) VALUES ('u1', '[]')"))


def test_upgrade_again_is_a_no_op_that_keeps_rows(migrated_url: str, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_tags (user_id, tag_ids) VALUES ('u1', '[1]')"))

    assert migrate.upgrade(migrated_url) == migrate.head_revision()

    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT user_id, tag_ids FROM user_tags")).all() == [
            ("u1", "[1]")
        ]
        assert conn.execute(sa.text("SELECT COUNT(*) FROM tag_definition")).scalar() == 0


def test_migrated_schema_matches_the_models(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []


def test_sqlite_in_a_missing_folder_is_created_and_migrated_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'deeper' / 'tags.db'}"

    migrate.ensure_schema(url)

    assert (tmp_path / "new" / "deeper" / "tags.db").exists()
    assert migrate.current_revision(url) == migrate.head_revision()


@pytest.mark.mariadb
def test_unmigrated_mariadb_asks_for_the_migrate_mode(mariadb_url: str) -> None:
    with pytest.raises(StoreError, match="--mode migrate"):
        migrate.ensure_schema(mariadb_url)
    migrate.upgrade(mariadb_url)
    migrate.ensure_schema(mariadb_url)


def test_a_revision_from_a_newer_version_is_refused(engine: sa.Engine, migrated_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))

    with pytest.raises(StoreError, match="newer version"):
        migrate.upgrade(migrated_url)


def test_missing_tables_say_to_migrate(sqlite_url: str) -> None:
    with pytest.raises(StoreError, match="--mode migrate"):
        writer.id_bounds(sqlite_url)


@pytest.mark.parametrize(
    "call",
    [
        migrate.current_revision,
        migrate.upgrade,
        writer.id_bounds,
    ],
)
def test_connection_failure_names_the_server_but_not_the_password(call: object) -> None:
    url = "mysql+pymysql://tagger:Sup3rSecretPw@127.0.0.1:1/tag_system"

    with pytest.raises(StoreError) as caught:
        call(url)  # type: ignore[operator]

    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "tag_system" in message
    assert "Sup3rSecretPw" not in message
    assert "password" in message  # what to check


def test_unsupported_url_scheme_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="unsupported store URL"):
        migrate.upgrade("postgresql://u@h/db")
