"""Tag definitions and their active rules as the engine and tasks see them."""

from __future__ import annotations

from tagsys.rules.compiler import RuleSource
from tagsys.tasks.base import TagDefinitionView


def tag_definition_views(db_url: str) -> list[TagDefinitionView]:
    """Every tag definition (active or not) with its active rules, from the store."""
    from tagsys.store import repository
    from tagsys.store.db import create_store_engine

    engine = create_store_engine(db_url)
    try:
        records = repository.load_all_definitions(bind=engine)
    finally:
        engine.dispose()
    return [
        TagDefinitionView(
            tag_id=r.tag_id,
            tag_name=r.tag_name,
            tag_category=r.tag_category,
            rules=tuple(RuleSource(rule_id, text) for rule_id, text in r.rules),
            is_active=r.is_active and not r.deleted,
            version=r.version,
        )
        for r in records
    ]
