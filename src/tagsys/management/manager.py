"""Categories, tags and rules: create, change, soft-delete, list versions, diff, revert.

Every change of a tag happens in one transaction that moves the tag's version from the one
it was read at to the next (compare-and-set: a concurrent edit gets ConflictError with the
current version), writes the definition and rules, inserts the immutable version row and an
audit entry. A tag created outside management (version 0) first gets a baseline version 1
with its definition as it was, so a revert can always go back to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from tagsys.errors import ConflictError, NotFoundError
from tagsys.management.checks import (
    SchemaSource,
    check_category,
    check_rules,
    check_unique_name,
)
from tagsys.management.definition import (
    Change,
    TagSpec,
    TagState,
    diff,
    readable_definition,
    state_of,
)
from tagsys.store import repository, versions
from tagsys.store.adapters import LOCK_TIMEOUT_SECONDS
from tagsys.store.db import serialized_transaction, transaction
from tagsys.store.schema import tag_category, tag_definition
from tagsys.store.versions import AuditRecord, VersionRecord


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and why."""

    name: str | None
    comment: str | None = None


class TagManager:
    def __init__(self, engine: sa.Engine, schema: SchemaSource) -> None:
        self.engine = engine
        self.schema = schema

    @contextmanager
    def _changing(self) -> Iterator[sa.Connection]:
        """A transaction for a change, one at a time per database: names are checked unique
        before they are written, and the tables have no unique key to catch a race."""
        busy = (
            f"tag management stayed locked for {LOCK_TIMEOUT_SECONDS}s by another change: the "
            "database is overloaded or a client hangs; retry"
        )
        with serialized_transaction(self.engine, "names", busy) as conn:
            yield conn

    # --- categories ------------------------------------------------------------------
    def list_categories(self) -> list[dict[str, Any]]:
        return [
            {
                "category_id": c["category_id"],
                "name": c["category_name"],
                "description": c["description"],
                "active": bool(c["is_active"]),
            }
            for c in repository.list_categories(bind=self.engine)
        ]

    def create_category(
        self, actor: Actor, name: str, description: str | None = None, active: bool = True
    ) -> dict[str, Any]:
        with self._changing() as conn:
            return self.create_category_in(conn, actor, name, description, active)

    def create_category_in(
        self,
        conn: sa.Connection,
        actor: Actor,
        name: str,
        description: str | None = None,
        active: bool = True,
    ) -> dict[str, Any]:
        taken = conn.execute(
            sa.select(tag_category.c.category_id).where(tag_category.c.category_name == name)
        ).scalar()
        if taken is not None:
            raise ConflictError(
                f"a category named '{name}' exists already (category {taken})",
                code="duplicate_name",
                details={"category_id": taken},
            )
        category_id = repository.upsert_category(
            bind=conn, category_name=name, description=description, is_active=active
        )
        versions.insert_audit(
            bind=conn,
            actor=actor.name,
            action="create",
            entity="category",
            entity_id=category_id,
            comment=actor.comment,
            summary=f"category '{name}' created",
        )
        return {
            "category_id": category_id,
            "name": name,
            "description": description,
            "active": active,
        }

    # --- reading tags ----------------------------------------------------------------
    def list_tags(self, include_deleted: bool = False) -> list[TagState]:
        records = repository.load_all_definitions(bind=self.engine)
        return [state_of(r) for r in records if include_deleted or not r.deleted]

    def get_tag(self, tag_id: int) -> TagState:
        with transaction(self.engine) as conn:
            return self._read(conn, tag_id)

    def _read(self, conn: sa.Connection, tag_id: int) -> TagState:
        for record in repository.load_all_definitions(bind=conn):
            if record.tag_id == tag_id:
                return state_of(record)
        raise NotFoundError(f"no tag with id {tag_id} (GET /api/v1/tags lists the tags)")

    # --- changing tags ---------------------------------------------------------------
    def create_tag(self, actor: Actor, spec: TagSpec) -> TagState:
        with self._changing() as conn:
            return self.create_tag_in(conn, actor, spec)

    def create_tag_in(self, conn: sa.Connection, actor: Actor, spec: TagSpec) -> TagState:
        problems = self._check(conn, spec, None)
        tag_id = self._insert_tag(conn, spec)
        repository.replace_rules(bind=conn, tag_id=tag_id, rules=list(spec.rules))
        state = self._record(conn, actor, tag_id, 0, spec, "create")
        return TagState(state.tag_id, state.version, spec, problems=tuple(problems))

    def update_tag(
        self, actor: Actor, tag_id: int, changes: dict[str, Any], expected: int | None = None
    ) -> TagState:
        """Change fields (`name`, `category`, `description`, `active`, `rules`)."""
        with self._changing() as conn:
            current = self._editable(conn, tag_id, expected)
            return self._change(conn, actor, current, current.spec.changed(**changes), "update")

    def delete_tag(self, actor: Actor, tag_id: int, expected: int | None = None) -> TagState:
        """Soft delete: kept with its versions; runs treat it as inactive (task-all removes it
        from users). A revert to an earlier version restores it."""
        with self._changing() as conn:
            current = self._editable(conn, tag_id, expected)
            return self._change(conn, actor, current, current.spec.changed(deleted=True), "delete")

    def revert(
        self, actor: Actor, tag_id: int, version: int, expected: int | None = None
    ) -> TagState:
        """A new version whose definition is that of `version`."""
        with self._changing() as conn:
            current = self._current(conn, tag_id, expected)
            target = self._version(conn, tag_id, version)
            spec = TagSpec.from_dict(target.definition)
            if actor.comment is None:
                actor = Actor(actor.name, f"revert to version {version}")
            return self._change(conn, actor, current, spec, "revert", allow_unchanged=True)

    def _editable(self, conn: sa.Connection, tag_id: int, expected: int | None) -> TagState:
        current = self._current(conn, tag_id, expected)
        if current.spec.deleted:
            raise ConflictError(
                f"tag {tag_id} is deleted: revert it to an earlier version to restore it "
                f"(POST /api/v1/tags/{tag_id}/revert)",
                code="tag_deleted",
                details={"current_version": current.version},
            )
        return current

    def _current(self, conn: sa.Connection, tag_id: int, expected: int | None) -> TagState:
        current = self._read(conn, tag_id)
        if expected is not None and expected != current.version:
            raise stale(tag_id, expected, current.version)
        return current

    def _change(
        self,
        conn: sa.Connection,
        actor: Actor,
        current: TagState,
        spec: TagSpec,
        action: str,
        allow_unchanged: bool = False,
        check_name: bool = True,
    ) -> TagState:
        if spec.same_as(current.spec) and not allow_unchanged:
            return current  # nothing changes: no new version
        problems = self._check(conn, spec, current.tag_id, check_name)
        self._write(conn, current.tag_id, spec)
        state = self._record(conn, actor, current.tag_id, current.version, spec, action, current)
        return TagState(state.tag_id, state.version, spec, problems=tuple(problems))

    def change_in(
        self,
        conn: sa.Connection,
        actor: Actor,
        current: TagState,
        spec: TagSpec,
        check_name: bool = True,
    ) -> TagState:
        """Apply `spec` to a tag read in the caller's transaction (rules as code; a caller
        that renames several tags at once checks their names after the last)."""
        action = "delete" if spec.deleted and not current.spec.deleted else "apply"
        return self._change(conn, actor, current, spec, action, check_name=check_name)

    def read_in(self, conn: sa.Connection, tag_id: int) -> TagState:
        return self._read(conn, tag_id)

    def _check(
        self, conn: sa.Connection, spec: TagSpec, tag_id: int | None, check_name: bool = True
    ) -> list[tuple[str, str]]:
        if not spec.deleted:
            check_category(conn, spec)
        if check_name:
            check_unique_name(conn, spec, tag_id)
        return check_rules(spec, self.schema)

    @staticmethod
    def _insert_tag(conn: sa.Connection, spec: TagSpec) -> int:
        result = conn.execute(
            sa.insert(tag_definition).values(
                tag_name=spec.name,
                tag_category=spec.category,
                description=spec.description,
                is_active=spec.active,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    @staticmethod
    def _write(conn: sa.Connection, tag_id: int, spec: TagSpec) -> None:
        conn.execute(
            sa.update(tag_definition)
            .where(tag_definition.c.tag_id == tag_id)
            .values(
                tag_name=spec.name,
                tag_category=spec.category,
                description=spec.description,
                is_active=spec.active,
                deleted_at=versions.now() if spec.deleted else None,
            )
        )
        repository.replace_rules(bind=conn, tag_id=tag_id, rules=list(spec.rules))

    def _record(
        self,
        conn: sa.Connection,
        actor: Actor,
        tag_id: int,
        version: int,
        spec: TagSpec,
        action: str,
        before: TagState | None = None,
    ) -> TagState:
        """Claim the next version (or fail on a concurrent edit) and write its records."""
        if version == 0 and before is not None:  # made outside management: keep it as v1
            self._claim(conn, tag_id, 0)
            versions.insert_version(
                bind=conn,
                tag_id=tag_id,
                version=1,
                action="baseline",
                actor=None,
                comment="the definition before its first managed change",
                definition=before.spec.to_dict(),
            )
            version = 1
        self._claim(conn, tag_id, version)
        new = version + 1
        versions.insert_version(
            bind=conn,
            tag_id=tag_id,
            version=new,
            action=action,
            actor=actor.name,
            comment=actor.comment,
            definition=spec.to_dict(),
        )
        versions.insert_audit(
            bind=conn,
            actor=actor.name,
            action=action,
            entity="tag",
            entity_id=tag_id,
            version=new,
            comment=actor.comment,
            summary=describe(action, tag_id, spec, before),
        )
        return TagState(tag_id, new, spec)

    def _claim(self, conn: sa.Connection, tag_id: int, version: int) -> None:
        if not versions.claim_version(bind=conn, tag_id=tag_id, current=version):
            latest = conn.execute(
                sa.select(tag_definition.c.version).where(tag_definition.c.tag_id == tag_id)
            ).scalar()
            raise stale(tag_id, version, int(latest or 0))

    # --- versions and audit ----------------------------------------------------------
    def versions(self, tag_id: int) -> list[VersionRecord]:
        with transaction(self.engine) as conn:
            self._read(conn, tag_id)
            return [readable(v) for v in versions.list_versions(bind=conn, tag_id=tag_id)]

    def version(self, tag_id: int, version: int) -> VersionRecord:
        with transaction(self.engine) as conn:
            return self._version(conn, tag_id, version)

    def _version(self, conn: sa.Connection, tag_id: int, version: int) -> VersionRecord:
        found = versions.get_version(bind=conn, tag_id=tag_id, version=version)
        if found is None:
            self._read(conn, tag_id)  # 404 for the tag first
            raise NotFoundError(
                f"tag {tag_id} has no version {version} "
                f"(GET /api/v1/tags/{tag_id}/versions lists them)"
            )
        return readable(found)

    def diff(self, tag_id: int, old: int, new: int) -> list[Change]:
        with transaction(self.engine) as conn:
            a = self._version(conn, tag_id, old)
            b = self._version(conn, tag_id, new)
        return diff(a.definition, b.definition)

    def audit(self, limit: int = 100, before: int | None = None) -> list[AuditRecord]:
        return versions.list_audit(bind=self.engine, limit=limit, before=before)


def readable(record: VersionRecord) -> VersionRecord:
    return replace(record, definition=readable_definition(record.definition))


def stale(tag_id: int, expected: int, current: int) -> ConflictError:
    return ConflictError(
        f"tag {tag_id} was changed meanwhile: you edited version {expected}, the current "
        f"version is {current}. Read it again (GET /api/v1/tags/{tag_id}), redo your change "
        "on it and send it with the new version",
        code="version_conflict",
        details={"tag_id": tag_id, "expected_version": expected, "current_version": current},
    )


def describe(action: str, tag_id: int, spec: TagSpec, before: TagState | None) -> str:
    """A one-line account of a change for the audit log."""
    if before is None:
        return f"tag {tag_id} '{spec.name}' created with {len(spec.rules)} rule(s)"
    changes = diff(before.spec.to_dict(), spec.to_dict())
    fields = sorted({c.path.split("[")[0].split(".")[0] for c in changes})
    what = ", ".join(fields) if fields else "no field"
    return f"tag {tag_id} '{spec.name}': {action} ({what} changed)"
