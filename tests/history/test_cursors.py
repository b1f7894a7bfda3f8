"""Page cursors: what a history gave out comes back intact; anything else is a UsageError."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tagsys.errors import UsageError
from tagsys.history import cursors

TAG_FIELDS = {"at": (str,), "run": (str,), "members": (int, type(None))}
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_cursor_round_trips() -> None:
    values = cursors.decode("tag", cursors.encode("tag", at=AT, run="r1", members=7), TAG_FIELDS)
    assert values == {"at": AT.isoformat(), "run": "r1", "members": 7}
    assert cursors.as_time(values["at"]) == AT
    unknown = cursors.encode("tag", at=AT, run="r1", members=None)
    assert cursors.decode("tag", unknown, TAG_FIELDS)["members"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        cursors.encode("user", at=AT, run="r1", members=1),  # another history's
        cursors.encode("tag", run="r1", members=1),  # no "at"
        cursors.encode("tag", at=AT, members=1),  # no "run"
        cursors.encode("tag", at=AT, run=5, members=1),
        cursors.encode("tag", at=AT, run="r1", members="7"),
        cursors.encode("tag", at=AT, run="r1", members=True),
        cursors.encode("tag", at=AT, run="r1"),  # members absent, not null
    ],
)
def test_a_cursor_without_its_fields_is_refused_by_name(cursor: str) -> None:
    with pytest.raises(UsageError, match="is not one this tag history gave out"):
        cursors.decode("tag", cursor, TAG_FIELDS)


def test_a_damaged_time_is_refused() -> None:
    with pytest.raises(UsageError, match="damaged"):
        cursors.as_time("yesterday")
