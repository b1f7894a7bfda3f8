"""Helpers of the history tests: table contents and journals, read through the product's
own store functions."""

from __future__ import annotations

from typing import Any

from tagsys.store import journal, repository
from tagsys.store.db import create_store_engine

Contents = dict[str, tuple[list[int], dict[int, dict[str, Any]]]]


def contents(url: str) -> Contents:
    """Every user_tags row's tag_ids and tag_details, by user."""
    engine = create_store_engine(url)
    try:
        rows = repository.read_user_tags(bind=engine)
    finally:
        engine.dispose()
    return {uid: (row.tag_ids, row.tag_details) for uid, row in rows.items()}


def run_journal(url: str, run_id: str) -> dict[str, journal.JournalEntry]:
    engine = create_store_engine(url)
    try:
        entries = journal.run_entries(bind=engine, run_id=run_id, after_user=None, limit=10**9)
    finally:
        engine.dispose()
    return {entry.user_id: entry for entry in entries}


def differing(got: Contents, want: Contents) -> dict[str, Any]:
    """A short description of how two tables differ (empty when they are equal)."""
    users = sorted(u for u in set(got) | set(want) if got.get(u) != want.get(u))
    return {u: (got.get(u), want.get(u)) for u in users[:5]} | (
        {"...": len(users)} if len(users) > 5 else {}
    )
