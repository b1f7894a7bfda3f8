"""Databases of the original system (bigdata_tag_system), made as its teams made them."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import MYSQL_SERVER_URL

SEED = Path(__file__).with_name("seed")  # the original script, copied unchanged
INIT_SQL = SEED / "init_database.sql"

README_USER_TAGS = """
CREATE TABLE user_tags (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    user_id VARCHAR(100) NOT NULL COMMENT '用户ID',
    tag_ids JSON NOT NULL COMMENT '用户的所有标签ID数组 [1,2,3,5]',
    tag_details JSON COMMENT '标签详细信息 {"1": {"tag_name": "高净值用户"}}',
    created_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间（永远不变）',
    updated_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP COMMENT '更新时间（由UPSERT逻辑控制）',
    UNIQUE KEY uk_user_id (user_id)
)
"""
"""`user_tags` as the original README.zh.md defines it (its other tables are the script's)."""


def init_sql_for(database: str) -> str:
    """The unchanged script; only the database name is the test's own."""
    return re.sub(r"\btag_system\b", database, INIT_SQL.read_text(encoding="utf-8"))


def _server() -> sa.URL:
    return sa.make_url(MYSQL_SERVER_URL)


def run_script(sql: str) -> None:
    """Run SQL text the way the original README says: the mysql client reading a file."""
    server = _server()
    command = ["mysql", f"-h{server.host or '127.0.0.1'}", f"-P{server.port or 3306}"]
    command.append(f"-u{server.username or 'root'}")
    if server.password:
        command.append(f"-p{server.password}")
    subprocess.run(command, input=sql.encode("utf-8"), check=True, capture_output=True)


@contextmanager
def original_database(readme_user_tags: bool = False) -> Iterator[str]:
    """A database made by init_database.sql (optionally with the README's user_tags)."""
    name = f"tagsys_orig_{uuid.uuid4().hex[:12]}"
    run_script(init_sql_for(name))
    url = f"{MYSQL_SERVER_URL}/{name}?charset=utf8mb4"
    engine = sa.create_engine(url)
    try:
        if readme_user_tags:
            with engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE user_tags"))
                conn.execute(sa.text(README_USER_TAGS))
        yield url
    finally:
        engine.dispose()
        server = sa.create_engine(MYSQL_SERVER_URL)
        with server.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()
