"""Keyword-only reads and writes of tag management's records: the immutable `tag_versions`,
the `tag_audit` log, and the compare-and-set of a tag's current version.

`bind` is an Engine (each call is its own transaction) or a Connection (the caller's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tagsys.store.db import Bind, transaction
from tagsys.store.schema import tag_audit, tag_definition, tag_versions
from tagsys.tagsets import canonical_json


@dataclass(frozen=True)
class VersionRecord:
    tag_id: int
    version: int
    action: str
    actor: str | None
    created_at: datetime
    comment: str | None
    definition: dict[str, Any]


@dataclass(frozen=True)
class AuditRecord:
    audit_id: int
    created_at: datetime
    actor: str | None
    action: str
    entity: str
    entity_id: int
    version: int | None
    comment: str | None
    summary: str | None


def now() -> datetime:
    return datetime.now(UTC)


def claim_version(*, bind: Bind, tag_id: int, current: int) -> bool:
    """Move the tag from version `current` to `current + 1`; False when another writer moved
    it first (optimistic locking: the caller's transaction is then rolled back)."""
    with transaction(bind) as conn:
        result = conn.execute(
            sa.update(tag_definition)
            .where(tag_definition.c.tag_id == tag_id, tag_definition.c.version == current)
            .values(version=current + 1)
        )
        return bool(result.rowcount)


def insert_version(
    *,
    bind: Bind,
    tag_id: int,
    version: int,
    action: str,
    actor: str | None,
    comment: str | None,
    definition: dict[str, Any],
    at: datetime | None = None,
) -> VersionRecord:
    record = VersionRecord(
        tag_id, version, action, actor, at or now(), comment, json.loads(canonical_json(definition))
    )
    with transaction(bind) as conn:
        conn.execute(
            sa.insert(tag_versions).values(
                tag_id=tag_id,
                version=version,
                action=action,
                actor=actor,
                created_at=record.created_at,
                comment=comment,
                definition=sa.type_coerce(canonical_json(definition), sa.Text),
            )
        )
    return record


def _version(row: sa.Row[Any]) -> VersionRecord:
    definition = row.definition
    if isinstance(definition, str):  # MariaDB hands back JSON as text
        definition = json.loads(definition)
    return VersionRecord(
        row.tag_id,
        row.version,
        row.action,
        row.actor,
        row.created_at,
        row.comment,
        definition,
    )


def list_versions(*, bind: Bind, tag_id: int) -> list[VersionRecord]:
    """A tag's versions, oldest first."""
    query = (
        sa.select(tag_versions)
        .where(tag_versions.c.tag_id == tag_id)
        .order_by(tag_versions.c.version)
    )
    with transaction(bind) as conn:
        return [_version(row) for row in conn.execute(query)]


def get_version(*, bind: Bind, tag_id: int, version: int) -> VersionRecord | None:
    query = sa.select(tag_versions).where(
        tag_versions.c.tag_id == tag_id, tag_versions.c.version == version
    )
    with transaction(bind) as conn:
        row = conn.execute(query).first()
    return _version(row) if row is not None else None


def insert_audit(
    *,
    bind: Bind,
    actor: str | None,
    action: str,
    entity: str,
    entity_id: int,
    version: int | None = None,
    comment: str | None = None,
    summary: str | None = None,
    at: datetime | None = None,
) -> None:
    with transaction(bind) as conn:
        conn.execute(
            sa.insert(tag_audit).values(
                created_at=at or now(),
                actor=actor,
                action=action,
                entity=entity,
                entity_id=entity_id,
                version=version,
                comment=comment,
                summary=summary,
            )
        )


def list_audit(
    *,
    bind: Bind,
    limit: int = 100,
    before: int | None = None,
    entity: str | None = None,
    entity_id: int | None = None,
) -> list[AuditRecord]:
    """Audit entries, newest first, those with an id below `before`."""
    query = sa.select(tag_audit).order_by(tag_audit.c.audit_id.desc()).limit(limit)
    if before is not None:
        query = query.where(tag_audit.c.audit_id < before)
    if entity is not None:
        query = query.where(tag_audit.c.entity == entity)
    if entity_id is not None:
        query = query.where(tag_audit.c.entity_id == entity_id)
    with transaction(bind) as conn:
        return [AuditRecord(**row._mapping) for row in conn.execute(query)]
