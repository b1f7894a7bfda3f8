"""Tag-set arithmetic of SPEC section 5, as plain Python: new(u) = (old(u) - S) ∪ computed(u).

Shared by the engine (planning, Spark merge) and the store (writers, repository); it imports
neither, so the store never depends on the engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TagInfo:
    """What `tag_details` records of a tag."""

    tag_name: str
    tag_category: str

    def as_detail(self) -> dict[str, str]:
        return {"tag_name": self.tag_name, "tag_category": self.tag_category}


@dataclass(frozen=True)
class TagScope:
    """Which tag ids a run owns. `all_tags` means every id (task-all), known or not.

    Tags in `failed` are never in scope: their existing assignments stay untouched.
    """

    tag_ids: frozenset[int] = frozenset()
    all_tags: bool = False
    failed: frozenset[int] = frozenset()

    def covers(self, tag_id: int) -> bool:
        if tag_id in self.failed:
            return False
        return self.all_tags or tag_id in self.tag_ids

    def with_failed(self, failed: Iterable[int]) -> TagScope:
        return TagScope(self.tag_ids, self.all_tags, self.failed | frozenset(failed))


def canonical_json(value: Any) -> str:
    """Compact, key-sorted JSON: equal content gives equal text (MariaDB compares JSON as text)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def details_json(details: Mapping[int, Mapping[str, Any]]) -> str:
    """`tag_details` text, keyed by tag id as string, in ascending id order."""
    ordered = {str(tag_id): dict(details[tag_id]) for tag_id in sorted(details)}
    return json.dumps(ordered, ensure_ascii=False, separators=(",", ":"))


def ids_json(tag_ids: Iterable[int]) -> str:
    return json.dumps(sorted(set(tag_ids)), separators=(",", ":"))


def merge_tags(
    old_ids: Iterable[int],
    old_details: Mapping[int, Mapping[str, Any]],
    computed: Iterable[int],
    scope: TagScope,
    definitions: Mapping[int, TagInfo],
) -> tuple[list[int], dict[int, dict[str, Any]]]:
    """Return (new tag ids sorted, new details) for one user.

    Kept ids (outside the scope) keep their old detail when it has one; computed ids
    take their current definition.
    """
    kept = {t for t in old_ids if not scope.covers(t)}
    added = {t for t in computed if scope.covers(t)}
    new_ids = sorted(kept | added)
    details: dict[int, dict[str, Any]] = {}
    for tag_id in new_ids:
        if tag_id in added and tag_id in definitions:
            details[tag_id] = definitions[tag_id].as_detail()
        elif tag_id in old_details:
            details[tag_id] = _kept_detail(tag_id, old_details[tag_id])
        elif tag_id in definitions:
            details[tag_id] = definitions[tag_id].as_detail()
        else:
            details[tag_id] = {"tag_name": f"tag {tag_id}", "tag_category": ""}
    return new_ids, details


def _kept_detail(tag_id: int, detail: object) -> dict[str, Any]:
    if not isinstance(detail, Mapping):
        raise ValueError(f"the detail of tag {tag_id} is {json.dumps(detail)}, not a JSON object")
    return dict(detail)


def parse_ids(text: str | None) -> list[int]:
    if not text:
        return []
    return [int(v) for v in json.loads(text)]


def parse_details(text: str | None) -> dict[int, dict[str, Any]]:
    if not text:
        return {}
    return {int(k): v for k, v in json.loads(text).items()}
