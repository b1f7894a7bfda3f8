"""Keyword-only reads and writes of definitions and rules (jobs: `tagsys.store.jobs`, runs:
`tagsys.store.runs`, both re-exported here).

`bind` is an Engine (each call is its own transaction) or a Connection (the caller's transaction).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa

from tagsys.errors import StoreError
from tagsys.store.db import Bind, transaction
from tagsys.store.jobs import (  # noqa: F401  (re-exported beside the other records)
    JobRecord,
    create_job,
    fail_interrupted_jobs,
    get_job,
    list_jobs,
    set_job_status,
)
from tagsys.store.runs import (  # noqa: F401  (re-exported beside the other records)
    RunRecord,
    beat,
    finish_run,
    get_latest_run,
    get_run,
    insert_run,
    list_runs,
    start_run,
)
from tagsys.store.schema import (
    tag_category,
    tag_definition,
    tag_rules,
    user_tags,
)
from tagsys.tagsets import TagInfo, canonical_json, parse_details, parse_ids


def _now() -> datetime:
    return datetime.now(UTC)


def _as_text(column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """A JSON column read as its stored text, not parsed."""
    return sa.type_coerce(column, sa.Text)


# --- definitions and rules -------------------------------------------------------------


@dataclass(frozen=True)
class TagDefinition:
    tag_id: int
    tag_name: str
    tag_category: str
    description: str | None
    is_active: bool
    rules: tuple[tuple[int, str], ...]
    """Active rules as (rule_id, rule_conditions text), by rule_id."""
    version: int = 0
    """The tag's version in `tag_versions` (0: never changed through tag management)."""
    deleted: bool = False
    """Soft-deleted: runs treat it as inactive, whatever `is_active` says."""

    def info(self) -> TagInfo:
        return TagInfo(self.tag_name, self.tag_category)


def load_active_definitions(*, bind: Bind) -> list[TagDefinition]:
    """Active tags (with or without rules), each with its active rules."""
    return _load_definitions(bind, active_only=True)


def load_all_definitions(*, bind: Bind) -> list[TagDefinition]:
    """Every tag, inactive ones too, each with its active rules."""
    return _load_definitions(bind, active_only=False)


def definition_infos(definitions: Iterable[TagDefinition]) -> dict[int, TagInfo]:
    return {d.tag_id: d.info() for d in definitions}


def _load_definitions(bind: Bind, *, active_only: bool) -> list[TagDefinition]:
    tags = sa.select(tag_definition).order_by(tag_definition.c.tag_id)
    if active_only:
        tags = tags.where(
            tag_definition.c.is_active.is_(True), tag_definition.c.deleted_at.is_(None)
        )
    rules = (
        sa.select(tag_rules.c.tag_id, tag_rules.c.rule_id, _as_text(tag_rules.c.rule_conditions))
        .where(tag_rules.c.is_active.is_(True))
        .order_by(tag_rules.c.tag_id, tag_rules.c.rule_id)
    )
    with transaction(bind) as conn:
        tag_rows = conn.execute(tags).all()
        by_tag: dict[int, list[tuple[int, str]]] = {}
        rule_rows = cast("sa.Result[int, int, str]", conn.execute(rules))
        for tag_id, rule_id, text in rule_rows:
            by_tag.setdefault(tag_id, []).append((rule_id, text))
    return [
        TagDefinition(
            tag_id=row.tag_id,
            tag_name=row.tag_name,
            tag_category=row.tag_category,
            description=row.description,
            is_active=bool(row.is_active),
            rules=tuple(by_tag.get(row.tag_id, ())),
            version=row.version,
            deleted=row.deleted_at is not None,
        )
        for row in tag_rows
    ]


def upsert_category(
    *,
    bind: Bind,
    category_name: str,
    description: str | None = None,
    is_active: bool = True,
    category_id: int | None = None,
) -> int:
    """Insert or update a category, found by id if given, else by name. Returns its id."""
    values = {"category_name": category_name, "description": description, "is_active": is_active}
    table, key = tag_category, tag_category.c.category_id
    with transaction(bind) as conn:
        if category_id is None:
            category_id = conn.execute(
                sa.select(key).where(tag_category.c.category_name == category_name)
            ).scalar()
        return _upsert_by_id(conn, table, key, category_id, values)


def list_categories(*, bind: Bind) -> list[dict[str, Any]]:
    query = sa.select(tag_category).order_by(tag_category.c.category_id)
    with transaction(bind) as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def upsert_tag(
    *,
    bind: Bind,
    tag_name: str,
    tag_category: str,
    description: str | None = None,
    is_active: bool = True,
    tag_id: int | None = None,
) -> int:
    """Insert or update a tag definition, found by id if given, else by name. Returns its id."""
    values = {
        "tag_name": tag_name,
        "tag_category": tag_category,
        "description": description,
        "is_active": is_active,
    }
    key = tag_definition.c.tag_id
    with transaction(bind) as conn:
        if tag_id is None:
            tag_id = conn.execute(
                sa.select(key).where(tag_definition.c.tag_name == tag_name).order_by(key).limit(1)
            ).scalar()
        return _upsert_by_id(conn, tag_definition, key, tag_id, values)


def _upsert_by_id(
    conn: sa.Connection,
    table: sa.Table,
    key: sa.Column[int],
    row_id: int | None,
    values: dict[str, Any],
) -> int:
    if row_id is not None:
        updated = conn.execute(sa.update(table).where(key == row_id).values(**values))
        if updated.rowcount:
            return row_id
        values = {key.name: row_id, **values}
    result = conn.execute(sa.insert(table).values(**values))
    return row_id if row_id is not None else _inserted_id(result)


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise StoreError(
            "the store returned no id for an inserted row: check the table's primary key"
        )
    return int(key[0])


def replace_rules(
    *, bind: Bind, tag_id: int, rules: Sequence[str | Mapping[str, Any]]
) -> list[int]:
    """Make `rules` the tag's rules (texts kept as given, mappings stored canonically).

    Idempotent: when the tag's active rules already have this content, nothing is written
    and their ids are kept. Returns the active rule ids.
    """
    texts = [r if isinstance(r, str) else canonical_json(r) for r in rules]
    with transaction(bind) as conn:
        existing = conn.execute(
            sa.select(
                tag_rules.c.rule_id, _as_text(tag_rules.c.rule_conditions), tag_rules.c.is_active
            )
            .where(tag_rules.c.tag_id == tag_id)
            .order_by(tag_rules.c.rule_id)
        ).all()
        if all(r.is_active for r in existing) and [_same_json(r[1]) for r in existing] == [
            _same_json(t) for t in texts
        ]:
            return [r.rule_id for r in existing]
        conn.execute(sa.delete(tag_rules).where(tag_rules.c.tag_id == tag_id))
        ids = []
        for text in texts:
            stmt = sa.insert(tag_rules).values(
                tag_id=tag_id, rule_conditions=sa.type_coerce(text, sa.Text), is_active=True
            )
            ids.append(_inserted_id(conn.execute(stmt)))
        return ids


def _same_json(text: str) -> str:
    """The text as canonical JSON, so that only layout is ignored (`1` is not `true`)."""
    try:
        return canonical_json(json.loads(text))
    except ValueError:
        return text


# --- user tags ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserTagsRow:
    user_id: str
    tag_ids: list[int]
    tag_details: dict[int, dict[str, Any]]
    created_time: datetime
    updated_time: datetime


def read_user_tags(*, bind: Bind, user_ids: Iterable[str] | None = None) -> dict[str, UserTagsRow]:
    """Rows of user_tags by user id (all rows when `user_ids` is None)."""
    query = sa.select(
        user_tags.c.user_id,
        _as_text(user_tags.c.tag_ids),
        _as_text(user_tags.c.tag_details),
        user_tags.c.created_time,
        user_tags.c.updated_time,
    )
    if user_ids is not None:
        query = query.where(user_tags.c.user_id.in_(sorted(set(user_ids))))
    with transaction(bind) as conn:
        rows = conn.execute(query.order_by(user_tags.c.user_id)).all()
    return {
        row[0]: UserTagsRow(row[0], parse_ids(row[1]), parse_details(row[2]), row[3], row[4])
        for row in rows
    }


def users_with_tag(
    *, bind: Bind, tag_id: int, after: str | None = None, limit: int = 100
) -> list[UserTagsRow]:
    """Rows holding `tag_id`, by user id ascending, those after the user id `after`."""
    from tagsys.store.adapters import adapter_for

    url = bind.engine.url
    has_tag = sa.text(adapter_for(url).HAS_TAG_SQL).bindparams(tag_id=tag_id)
    query = (
        sa.select(
            user_tags.c.user_id,
            _as_text(user_tags.c.tag_ids),
            _as_text(user_tags.c.tag_details),
            user_tags.c.created_time,
            user_tags.c.updated_time,
        )
        .where(has_tag)
        .order_by(user_tags.c.user_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(user_tags.c.user_id > after)
    with transaction(bind) as conn:
        rows = conn.execute(query).all()
    return [
        UserTagsRow(row[0], parse_ids(row[1]), parse_details(row[2]), row[3], row[4])
        for row in rows
    ]
