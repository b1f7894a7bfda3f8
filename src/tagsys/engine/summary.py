"""The summary every run returns, records and prints."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, TextIO


@dataclass
class TagOutcome:
    tag_id: int
    tag_name: str
    status: str  # ok | failed | cleared (in scope, no active rule: removed from users)
    task: str = ""
    matched: int = 0
    added: int = 0
    removed: int = 0
    message: str | None = None
    unparsed_dates: dict[str, int] = field(default_factory=dict)
    """Data quality: per text column read as dates, the users' values that are not dates
    (their conditions were false)."""
    version: int | None = None
    """The version of the tag's definition and rules this run used (`tag_versions`;
    0: never changed through tag management; None: the tag is not defined)."""


@dataclass
class RunSummary:
    run_id: str
    mode: str
    as_of: date
    tag_scope: list[int] | str
    user_scope: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    users_evaluated: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    tags: list[TagOutcome] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    """Why the run stopped before its end (the failed tags are in `tags`)."""
    final_status: str | None = None
    """Set when the run stopped early: failed or cancelled."""
    written_at: datetime | None = None
    """The write time stamped on every row the run inserted or changed."""
    rows_deleted: int = 0
    """Rows removed (only a rollback removes rows: those the rolled-back run created)."""
    rollback: dict[str, Any] | None = None
    """A rollback's own outcome: the run it undid, rows already restored, conflicts."""

    @property
    def rows_written(self) -> int:
        return self.rows_inserted + self.rows_updated + self.rows_deleted

    @property
    def failed_tags(self) -> list[TagOutcome]:
        return [t for t in self.tags if t.status == "failed"]

    @property
    def succeeded(self) -> bool:
        return not self.failed_tags and self.final_status is None

    @property
    def status(self) -> str:
        if self.final_status is not None:
            return self.final_status
        return "completed" if self.succeeded else "failed"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        data["written_at"] = self.written_at.isoformat() if self.written_at else None
        data["status"] = self.status
        return data

    def render(self) -> str:
        verb = "rows that would be" if self.dry_run else "rows"
        lines = [
            f"Run {self.run_id} ({self.mode}{', dry run' if self.dry_run else ''}): {self.status}",
            f"  as_of {self.as_of.isoformat()}  tags: {self.tag_scope}  users: {self.user_scope}",
            f"  users evaluated: {self.users_evaluated}",
            f"  {verb} inserted: {self.rows_inserted}  updated: {self.rows_updated}"
            f"  unchanged: {self.rows_unchanged}",
            "",
            f"  {'tag':>5}  {'name':<20} {'status':<8} {'matched':>9} {'added':>8} {'removed':>8}  task",
        ]
        for tag in self.tags:
            lines.append(
                f"  {tag.tag_id:>5}  {tag.tag_name[:20]:<20} {tag.status:<8} {tag.matched:>9} "
                f"{tag.added:>8} {tag.removed:>8}  {tag.task}"
            )
        for tag in self.failed_tags:
            lines.append(f"  FAILED tag {tag.tag_id} ({tag.tag_name}): {tag.message}")
        if self.error:
            lines.append(f"  STOPPED: {self.error}")
        for tag in self.tags:
            lines.extend(
                f"  warning: tag {tag.tag_id} ({tag.tag_name}): {count} value(s) of {column} are "
                "not dates (YYYY-MM-DD[ HH:MM:SS]); its conditions on them were false"
                for column, count in tag.unparsed_dates.items()
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        timing = "  ".join(f"{k} {v:.1f}s" for k, v in self.phases.items())
        lines.append(f"  time: {timing}")
        return "\n".join(lines)


class PhaseTimer:
    """Times named phases; on a terminal, says when a long phase starts and ends."""

    def __init__(
        self,
        phases: dict[str, float],
        stream: TextIO | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> None:
        self.phases = phases
        self.stream = stream if stream is not None else sys.stderr
        self.on_start = on_start

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.on_start is not None:
            self.on_start(name)
        start = time.perf_counter()
        show = self.stream.isatty()
        if show:
            self.stream.write(f"… {name}\n")
            self.stream.flush()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.phases[name] = round(self.phases.get(name, 0.0) + elapsed, 3)
            if show:
                self.stream.write(f"✓ {name} ({elapsed:.1f}s)\n")
                self.stream.flush()
