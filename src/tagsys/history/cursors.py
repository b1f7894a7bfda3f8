"""Opaque page cursors: callers pass back what they were given, never build one."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tagsys.errors import UsageError


def encode(kind: str, **values: Any) -> str:
    data = {
        "k": kind,
        **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()},
    }
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str, fields: Mapping[str, tuple[type, ...]]) -> dict[str, Any]:
    """The values of a cursor made by `encode(kind, ...)`, each of `fields` present with one of
    its types (a bool is not an int); a UsageError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.pop("k") != kind:
            raise ValueError(kind)
        for name, types in fields.items():
            value = data[name]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise TypeError(name)
        return data
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"the cursor {cursor[:40]!r} is not one this {kind} history gave out: pass the "
            "next_cursor of the previous page unchanged, or none for the first page"
        ) from exc


def as_time(value: Any) -> datetime:
    try:
        at = datetime.fromisoformat(str(value))
        at.astimezone(UTC)  # a forged extreme time overflows here, not in the store's driver
    except (ValueError, OverflowError) as exc:
        raise UsageError("the cursor is damaged: pass next_cursor unchanged") from exc
    return at
