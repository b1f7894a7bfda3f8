"""Putting the demo into a store and a lake, and taking it out again (init_data.sh)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from tagsys.audiences import maintain
from tagsys.demo.generator import TABLES, generate_lake
from tagsys.demo.seed_tags import SEED_CATEGORIES, SEED_TAGS
from tagsys.errors import LakeError, UsageError
from tagsys.lake.filesystem import is_s3
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import ensure_schema


class TagData(Protocol):
    """A tag definition with its rules, as plain data (SeedTag, the benchmark's tags...)."""

    @property
    def tag_id(self) -> int: ...
    @property
    def tag_name(self) -> str: ...
    @property
    def tag_category(self) -> str: ...
    @property
    def rules(self) -> Sequence[Mapping[str, Any]]: ...


def load_seed_tags(db_url: str, *, replace_edited: bool = True) -> int:
    """Insert or update the seed's categories, 8 tags and their rules (idempotent).

    With `replace_edited=False`, tags whose stored name, category or rules differ from the
    seed's are refused (listed) before anything is written."""
    if not replace_edited:
        edited = edited_tags(db_url, SEED_TAGS)
        if edited:
            raise UsageError(
                "init-db would overwrite tags that differ from the demo's: "
                + "; ".join(edited)
                + ". Nothing was changed; add --yes to replace them with the demo's content"
            )
    return load_tags(db_url, SEED_TAGS)


def edited_tags(db_url: str, tags: Sequence[TagData]) -> list[str]:
    """`tag N: what differs` for each of `tags` whose stored definition or rules differ."""
    ensure_schema(db_url)
    engine = create_store_engine(db_url)
    try:
        stored = {d.tag_id: d for d in repository.load_all_definitions(bind=engine)}
    finally:
        engine.dispose()
    found = []
    for tag in tags:
        have = stored.get(tag.tag_id)
        if have is None:
            continue
        if (have.tag_name, have.tag_category) != (tag.tag_name, tag.tag_category):
            found.append(
                f"tag {tag.tag_id} is '{have.tag_name}' ({have.tag_category}), "
                f"the demo's is '{tag.tag_name}' ({tag.tag_category})"
            )
        elif [json.loads(text) for _, text in have.rules] != list(tag.rules):
            found.append(f"tag {tag.tag_id} ({have.tag_name}) has other rules")
    return found


def load_tags(db_url: str, tags: Sequence[TagData]) -> int:
    """Insert or update the seed's categories, then `tags` with their rules (idempotent)."""
    ensure_schema(db_url)
    engine = create_store_engine(db_url)
    try:
        for category in SEED_CATEGORIES:
            repository.upsert_category(
                bind=engine,
                category_id=category.category_id,
                category_name=category.category_name,
                description=category.description,
            )
        for tag in tags:
            repository.upsert_tag(
                bind=engine,
                tag_id=tag.tag_id,
                tag_name=tag.tag_name,
                tag_category=tag.tag_category,
                description=getattr(tag, "description", None),
            )
            repository.replace_rules(bind=engine, tag_id=tag.tag_id, rules=list(tag.rules))
    finally:
        engine.dispose()
    return len(tags)


def write_demo_lake(lake_root: str, users: int, as_of: date, seed: int = 42) -> list[str]:
    """Replace the demo tables of a local lake with freshly generated ones."""
    _remove_demo_tables(lake_root)
    return sorted(generate_lake(lake_root, users, as_of, seed=seed))


def clean(db_url: str, lake_root: str) -> str:
    """Remove demo tags, user tags, runs and the demo tables; the schema stays.

    Everything that could fail is checked first: either all of it goes, or nothing."""
    _check_local_lake(lake_root)
    ensure_schema(db_url)
    engine = create_store_engine(db_url)
    try:
        with engine.begin() as conn:
            for table in (
                "user_tags",
                "user_tags_journal",
                "tag_rules",
                "tag_definition",
                "tag_category",
                "tag_runs",
            ):
                conn.execute(sa.text(f"DELETE FROM {table}"))
            maintain.rebuild(conn)  # the published audiences go with the rows, atomically
    finally:
        engine.dispose()
    removed = _remove_demo_tables(lake_root)
    return f"cleaned the store's tags and user tags; removed lake tables: {', '.join(removed) or 'none'}"


def _check_local_lake(lake_root: str) -> None:
    if is_s3(lake_root):
        raise LakeError(
            f"the demo data is only written to and removed from a local lake folder, not "
            f"{lake_root}; nothing was changed"
        )


def _remove_demo_tables(lake_root: str) -> list[str]:
    _check_local_lake(lake_root)
    removed = []
    for table in TABLES:
        folder = Path(lake_root) / table
        if folder.exists():
            shutil.rmtree(folder)
            removed.append(table)
    return removed
