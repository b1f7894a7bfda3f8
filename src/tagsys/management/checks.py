"""What a definition must satisfy before it is saved: a known category, a unique name, and
(for an active tag) rules that are valid on the lake."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tagsys.errors import ConflictError, DefinitionError
from tagsys.management.definition import TagSpec
from tagsys.rules.validate import validate_rule
from tagsys.store.schema import tag_category, tag_definition

if TYPE_CHECKING:
    from tagsys.lake.schema import LakeSchema

SchemaSource = Callable[[], "LakeSchema"]


def located(prefix: str, location: str) -> str:
    """A rule problem's location inside the document that holds the rule."""
    if location == "$":
        return prefix
    return f"{prefix}{location}" if location.startswith("[") else f"{prefix}.{location}"


def rule_problems(
    rules: Sequence[Any], schema: LakeSchema, prefix: str = "rules"
) -> list[tuple[str, str]]:
    """Every error of every rule, located as `rules[1].conditions[0].value`."""
    found = []
    for index, rule in enumerate(rules):
        for problem in validate_rule(rule, schema):
            if problem.severity == "error":
                found.append((located(f"{prefix}[{index}]", problem.location), problem.message))
    return found


def check_rules(
    spec: TagSpec, schema: SchemaSource, prefix: str = "rules"
) -> list[tuple[str, str]]:
    """The rules' problems. An active tag with any is refused (DefinitionError); an inactive
    draft is saved with them (they are returned)."""
    if not spec.rules or spec.deleted:
        return []
    problems = rule_problems(spec.rules, schema(), prefix)
    if problems and spec.active:
        raise DefinitionError(
            f"tag '{spec.name}' has {len(problems)} rule problem(s) and cannot be saved as "
            "active: fix them, or save it with active: false as a draft",
            problems,
        )
    return problems


def check_category(conn: sa.Connection, spec: TagSpec) -> None:
    found = conn.execute(
        sa.select(tag_category.c.category_id).where(tag_category.c.category_name == spec.category)
    ).first()
    if found is None:
        known: Iterable[str] = conn.execute(
            sa.select(tag_category.c.category_name).order_by(tag_category.c.category_name)
        ).scalars()
        raise DefinitionError(
            f"tag '{spec.name}': unknown category '{spec.category}'",
            [
                (
                    "category",
                    f"no category named '{spec.category}'; categories: "
                    f"{', '.join(known) or '(none: create one first)'}",
                )
            ],
        )


def check_unique_name(conn: sa.Connection, spec: TagSpec, tag_id: int | None) -> None:
    """Tag names are unique among tags that are not deleted."""
    if spec.deleted:
        return
    query = sa.select(tag_definition.c.tag_id).where(
        tag_definition.c.tag_name == spec.name, tag_definition.c.deleted_at.is_(None)
    )
    if tag_id is not None:
        query = query.where(tag_definition.c.tag_id != tag_id)
    other = conn.execute(query.limit(1)).scalar()
    if other is not None:
        raise ConflictError(
            f"a tag named '{spec.name}' exists already (tag {other}): choose another name",
            code="duplicate_name",
            details={"tag_id": other},
        )
