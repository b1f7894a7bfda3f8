"""Journal retention: the entries of runs older than TAGSYS_JOURNAL_DAYS are deleted, a whole
run at a time, and the run is marked `pruned` (it can no longer be rolled back)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tagsys.store import journal
from tagsys.store.runs import RunRecord, end_abandoned


@dataclass(frozen=True)
class PruneResult:
    runs: int
    entries: int
    cutoff: datetime

    def render(self) -> str:
        return (
            f"pruned the journal of {self.runs} run(s) started before "
            f"{self.cutoff.isoformat(timespec='seconds')}: {self.entries} entries deleted"
        )


def prune(bind: sa.Engine, days: int, now: datetime | None = None) -> PruneResult:
    """Delete the journal of every run that started more than `days` days ago and is not
    running (an abandoned run is ended first, then pruned like a finished one)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    runs = [
        run
        for run in journal.journaled_runs_before(bind=bind, started_before=cutoff)
        if _ended(bind, run)
    ]
    entries = sum(journal.prune_run(bind=bind, run_id=run.run_id) for run in runs)
    return PruneResult(len(runs), entries, cutoff)


def _ended(bind: sa.Engine, run: RunRecord) -> bool:
    """Whether the run has ended: one read as abandoned is recorded as ended first (else, if
    only slow, it could write on without a journal and be published in part)."""
    status = run.effective_status()
    if status == "abandoned":
        return end_abandoned(bind=bind, run=run)
    return status != "running"
