"""Adopting a database of the original system (bigdata_tag_system) in place.

Teams arrive with a MySQL database made by the original `init_database.sql` (`user_tags`
with `computed_date DATE NOT NULL`, no `created_time`/`updated_time`, `utf8mb4_unicode_ci`)
or by its README (`user_tags` with `created_time`/`updated_time`). `migrate` recognises
both (the four seed tables and no `alembic_version`), shows this plan, and with `--yes`
brings them to the product's first revision and stamps it; later revisions then apply as
usual. Every row and id is kept.

Each step is planned from what the database holds at that moment and does only what is
still missing, so a plan that failed midway is finished by running `migrate --yes` again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tagsys.errors import StoreError

ORIGINAL_TABLES = ("tag_category", "tag_definition", "tag_rules", "user_tags")
ADOPTED_REVISION = "0001_initial"
"""The revision an adopted database is stamped at; migrations after it then run normally."""
COLLATION = "utf8mb4_bin"
BACKFILL_CHUNK_IDS = 50_000
_TIMESTAMPS = ("created_time", "updated_time")
_TEXT_TYPES = ("char", "varchar", "text", "tinytext", "mediumtext", "longtext")
_EXAMPLES = 10


@dataclass(frozen=True)
class Step:
    """One change: what it does, in words, and the SQL it runs (or None: done in Python)."""

    description: str
    sql: str | None = None
    run: Callable[[sa.Connection], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AdoptionPlan:
    """What adopting this database does; empty `steps` when nothing is left to do."""

    shape: str
    user_tags_rows: str
    """How many rows user_tags holds, for people ("3", "about 12,000,000")."""
    steps: tuple[Step, ...]
    collisions: tuple[tuple[str, int], ...]
    """user ids held by more than one row under the product's binary collation, with counts."""

    def render(self) -> str:
        lines = [
            f"This database has the original system's tables ({self.shape}); "
            f"user_tags holds {self.user_tags_rows} rows, all of which are kept.",
            "Adopting it in place does, in order:",
        ]
        for number, step in enumerate(self.steps, 1):
            lines.append(f"  {number}. {step.description}")
            if step.sql:
                lines.append(f"       {step.sql}")
        if self.collisions:
            lines.append(self.collision_message())
        return "\n".join(lines)

    def collision_message(self) -> str:
        shown = ", ".join(f"{uid!r} ({n} rows)" for uid, n in self.collisions[:_EXAMPLES])
        return (
            f"REFUSED: {len(self.collisions)} user id(s) are held by more than one user_tags row "
            f"and would collide under the product's case-sensitive collation: {shown}. "
            "Merge or delete the duplicate rows (keep one row per user_id), then run "
            "`--mode migrate` again; nothing was changed."
        )


def is_original(conn: sa.Connection) -> bool:
    """The original system's four tables without a schema revision of ours."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return False
    tables = set(sa.inspect(conn).get_table_names())
    return "alembic_version" not in tables and set(ORIGINAL_TABLES) <= tables


def plan_adoption(
    conn: sa.Connection, now: datetime | None = None, *, count_rows: bool = True
) -> AdoptionPlan:
    """Every step still needed to bring the original tables to `ADOPTED_REVISION`."""
    stamp = (now or datetime.now(UTC)).replace(tzinfo=None)
    columns = _columns(conn, "user_tags")
    steps: list[Step] = []
    for table in ORIGINAL_TABLES:
        steps.extend(_structure_steps(conn, table, columns if table == "user_tags" else None))
    steps.extend(_backfill_steps(conn, columns, stamp))
    steps.extend(_final_steps(conn, columns))
    steps.extend(_product_table_steps(conn))
    steps.append(Step(f"record the schema as revision {ADOPTED_REVISION}, then apply later ones"))
    shape = "the README's user_tags" if "computed_date" not in columns else "init_database.sql"
    rows = _row_count(conn) if count_rows else ""
    collisions = () if _has_unique_user_id(conn) else _collisions(conn)
    return AdoptionPlan(shape, rows, tuple(steps), collisions)


def adopt(conn: sa.Connection, plan: AdoptionPlan, stamp: Callable[[], None]) -> None:
    """Apply a plan made on `conn` (autocommit: every step is kept as it completes)."""
    if plan.collisions:
        raise StoreError(plan.collision_message())
    for step in plan.steps:  # the last one, recording the revision, is `stamp`
        if step.run is not None:
            step.run(conn)
        elif step.sql is not None:
            conn.execute(sa.text(step.sql))
    stamp()


EXACT_COUNT_LIMIT = 200_000
"""Above this many rows (by the server's estimate) the plan shows the estimate: an exact
COUNT(*) of a large user_tags takes seconds per million rows."""


def _row_count(conn: sa.Connection) -> str:
    estimate = conn.execute(
        sa.text(
            "SELECT TABLE_ROWS FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'user_tags'"
        )
    ).scalar()
    if estimate is not None and int(estimate) > EXACT_COUNT_LIMIT:
        return f"about {int(estimate):,}"
    return str(conn.execute(sa.text("SELECT COUNT(*) FROM user_tags")).scalar())


def _columns(conn: sa.Connection, table: str) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME,"
            " COLUMN_DEFAULT FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
        ),
        {"t": table},
    ).all()
    return {
        r[0]: {
            "data_type": str(r[1]).lower(),
            "column_type": str(r[2]).lower(),
            "nullable": r[3] == "YES",
            "collation": r[4],
            "default": r[5],
        }
        for r in rows
    }


def _table_collation(conn: sa.Connection, table: str) -> str:
    return str(
        conn.execute(
            sa.text(
                "SELECT TABLE_COLLATION FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
            ),
            {"t": table},
        ).scalar()
    )


def _needs_collation(conn: sa.Connection, table: str, columns: dict[str, dict[str, Any]]) -> bool:
    text_collations = {
        c["collation"] for c in columns.values() if c["data_type"] in _TEXT_TYPES
    } - {None}
    return _table_collation(conn, table) != COLLATION or bool(text_collations - {COLLATION})


def _structure_steps(
    conn: sa.Connection, table: str, user_tags: dict[str, dict[str, Any]] | None
) -> list[Step]:
    columns = user_tags if user_tags is not None else _columns(conn, table)
    parts: list[str] = []
    notes: list[str] = []
    if _needs_collation(conn, table, columns):
        parts.append(f"CONVERT TO CHARACTER SET utf8mb4 COLLATE {COLLATION}")
        effect = (
            "'abc' and 'ABC' become different users, as in the lake"
            if table == "user_tags"
            else "names compare case-sensitively"
        )
        notes.append(f"collation {_table_collation(conn, table)} -> {COLLATION} ({effect})")
    if user_tags is not None:
        parts += _user_tags_columns(user_tags, notes)
    steps = []
    if parts:
        sql = f"ALTER TABLE {table} " + ", ".join(parts)
        steps.append(Step(f"{table}: " + "; ".join(notes), sql))
    if table == "tag_rules":
        steps.extend(_rules_index_steps(conn))
    if table == "user_tags" and not _has_unique_user_id(conn):
        steps.append(
            Step(
                "user_tags: add the unique key on user_id (one row per user)",
                "ALTER TABLE user_tags ADD UNIQUE KEY uk_user_id (user_id)",
            )
        )
    return steps


def _user_tags_columns(columns: dict[str, dict[str, Any]], notes: list[str]) -> list[str]:
    parts = []
    for name in _TIMESTAMPS:
        column = columns.get(name)
        if column is None:
            parts.append(f"ADD COLUMN {name} DATETIME(6) NULL")
            notes.append(f"add {name} (filled in below)")
        elif column["column_type"] != "datetime(6)":
            parts.append(f"MODIFY {name} DATETIME(6) NULL")
            notes.append(f"{name} {column['column_type']} -> datetime(6) UTC, values kept")
    computed = columns.get("computed_date")
    if computed is not None and not computed["nullable"]:
        parts.append("MODIFY computed_date DATE NULL")
        notes.append(
            "computed_date kept with its values but made optional: tagsys no longer writes it "
            "(created_time/updated_time say when a row was made and last changed)"
        )
    return parts


def _rules_index_steps(conn: sa.Connection) -> list[Step]:
    indexes = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("tag_rules")}
    if "ix_tag_rules_tag_id" in indexes:
        return []
    if indexes.get("idx_tag_id") == ["tag_id"]:
        return [
            Step(
                "tag_rules: give the tag_id index the product's name",
                "ALTER TABLE tag_rules RENAME INDEX idx_tag_id TO ix_tag_rules_tag_id",
            )
        ]
    return [
        Step(
            "tag_rules: index tag_id",
            "CREATE INDEX ix_tag_rules_tag_id ON tag_rules (tag_id)",
        )
    ]


def _has_unique_user_id(conn: sa.Connection) -> bool:
    inspector = sa.inspect(conn)
    keys = [list(i["column_names"]) for i in inspector.get_indexes("user_tags") if i.get("unique")]
    keys += [list(u["column_names"]) for u in inspector.get_unique_constraints("user_tags")]
    return ["user_id"] in keys


def _backfill_steps(
    conn: sa.Connection, columns: dict[str, dict[str, Any]], stamp: datetime
) -> list[Step]:
    missing = [name for name in _TIMESTAMPS if name not in columns]
    nullable = [name for name in _TIMESTAMPS if name in columns and columns[name]["nullable"]]
    if not missing and not nullable:
        return []
    source = "computed_date" if "computed_date" in columns else None
    fallback = f"TIMESTAMP({source}), " if source else ""
    assignments = ", ".join(f"{name} = COALESCE({name}, {fallback}:stamp)" for name in _TIMESTAMPS)
    sql = (
        f"UPDATE user_tags SET {assignments} WHERE id BETWEEN :lo AND :hi"
        " AND (created_time IS NULL OR updated_time IS NULL)"
    )
    origin = (
        f"from computed_date (midnight UTC), else {stamp:%Y-%m-%d %H:%M:%S}"
        if source
        else (f"to {stamp:%Y-%m-%d %H:%M:%S} where empty")
    )
    return [
        Step(
            f"user_tags: fill created_time and updated_time {origin}, "
            f"{BACKFILL_CHUNK_IDS} ids per committed batch",
            sql.replace(":stamp", f"'{stamp:%Y-%m-%d %H:%M:%S}'"),
            run=lambda c: _backfill(c, sql, stamp),
        )
    ]


def _backfill(conn: sa.Connection, sql: str, stamp: datetime) -> None:
    bounds = conn.execute(sa.text("SELECT MIN(id), MAX(id) FROM user_tags")).one()
    low, high = (int(b) if b is not None else None for b in bounds)
    if low is None or high is None:
        return
    for start in range(low, high + 1, BACKFILL_CHUNK_IDS):
        params = {"lo": start, "hi": start + BACKFILL_CHUNK_IDS - 1, "stamp": stamp}
        conn.execute(sa.text(sql), params)


def _final_steps(conn: sa.Connection, columns: dict[str, dict[str, Any]]) -> list[Step]:
    pending = [
        name
        for name in _TIMESTAMPS
        if name not in columns
        or columns[name]["nullable"]
        or columns[name]["column_type"] != "datetime(6)"
    ]
    if not pending:
        return []
    parts = ", ".join(
        f"MODIFY {name} DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)" for name in pending
    )
    return [
        Step(
            "user_tags: created_time and updated_time required, as tagsys writes them",
            f"ALTER TABLE user_tags {parts}",
        )
    ]


def _product_table_steps(conn: sa.Connection) -> list[Step]:
    from tagsys.store.migrate import revision_module

    tables = set(sa.inspect(conn).get_table_names())
    creators = revision_module(ADOPTED_REVISION).PRODUCT_TABLES
    return [
        Step(f"create the product's table {name}", run=_in_alembic(creator))
        for name, creator in creators.items()
        if name not in tables
    ]


def _in_alembic(creator: Callable[[], None]) -> Callable[[sa.Connection], None]:
    def run(conn: sa.Connection) -> None:
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        with Operations.context(MigrationContext.configure(conn)):
            creator()

    return run


def _collisions(conn: sa.Connection) -> tuple[tuple[str, int], ...]:
    """Only a table without the unique key can hold any: the original collations are
    case-insensitive, so a unique key there is stricter than the product's binary one."""
    rows = conn.execute(
        sa.text(
            "SELECT CONVERT(user_id USING utf8mb4) COLLATE utf8mb4_bin AS uid, COUNT(*)"
            " FROM user_tags GROUP BY uid HAVING COUNT(*) > 1 ORDER BY uid"
        )
    ).all()
    return tuple((str(r[0]), int(r[1])) for r in rows)
