"""Dates stored as text (SPEC 3): what counts as one, in Python and as a Spark column.

Hive jobs and the original system's generator keep dates as ISO strings. Rules read them
(`"type": "date"` on a text column), and so do incremental runs' change columns.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column

_DATE_TEXT_BODY = (
    r"(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?)?"
)
DATE_TEXT_PATTERN = rf"^{_DATE_TEXT_BODY}\z"
"""Dates stored as text (SPEC 3): `YYYY-MM-DD`, optionally with a time `HH:MM:SS[.fraction]`
after a space or a `T`, no time zone. The date must exist (no 2024-02-30). A Java pattern
(Spark's `rlike`): `\\z` is the end of the text, where `$` also matches before a final line
break; Python matches the same texts with `fullmatch`."""
_DATE_TEXT = re.compile(_DATE_TEXT_BODY)


def parse_date_text(text: object) -> date | None:
    """The date of a stored text value, or None when it is not a date written as above."""
    if not isinstance(text, str) or not _DATE_TEXT.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def text_to_date(text: Column) -> Column:
    """The date of a text value written as `DATE_TEXT_PATTERN` says; null for any other text."""
    from pyspark.sql import functions as F

    day = F.try_to_date(F.substring(text, 1, 10), "yyyy-MM-dd")
    return F.when(text.rlike(DATE_TEXT_PATTERN), day)
