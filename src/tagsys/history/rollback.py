"""Rolling back a run: every row it wrote gets its before image back, batch by batch in the
store (no Spark), except rows changed after it (conflicts, reported). A rollback is itself a
recorded, journaled run, so it can be rolled back too."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from tagsys.engine.summary import PhaseTimer, RunSummary
from tagsys.errors import ConflictError, TagSysError, UsageError
from tagsys.store import journal
from tagsys.store.db import create_store_engine, engine_adapter
from tagsys.store.restore import RestoreCounts, RestoreRequest, restore_batch
from tagsys.store.runs import RunRecord, end_abandoned, get_run

CONFLICT_SAMPLE = 20
"""How many conflicting user ids a rollback's summary lists."""
WORKERS = 2
"""Connections restoring batches at once (1 on SQLite, whose writers take turns)."""


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback did (plain values: the REST service returns it as it is)."""

    run_id: str
    """The rollback's own run id (roll it back to redo the rolled-back run)."""
    rolled_back_run_id: str
    dry_run: bool
    status: str
    restored: int
    """Rows given their content before the run back."""
    deleted: int
    """Rows the run created, removed."""
    recreated: int
    """Rows the run deleted (it was a rollback itself), inserted again."""
    already: int
    """Rows already as before the run: left alone."""
    conflicts: int
    """Rows changed after the run: left alone."""
    conflict_sample: list[str]
    started_at: datetime
    finished_at: datetime | None
    error: str | None = None

    @classmethod
    def from_summary(cls, summary: RunSummary) -> RollbackResult:
        info = summary.rollback or {}
        return cls(
            run_id=summary.run_id,
            rolled_back_run_id=str(info.get("run_id", "")),
            dry_run=summary.dry_run,
            status=summary.status,
            restored=summary.rows_updated,
            deleted=summary.rows_deleted,
            recreated=summary.rows_inserted,
            already=summary.rows_unchanged,
            conflicts=int(info.get("conflicts", 0)),
            conflict_sample=list(info.get("conflict_sample", [])),
            started_at=summary.started_at,
            finished_at=summary.finished_at,
            error=summary.error,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data

    def render(self) -> str:
        verb = "would be " if self.dry_run else ""
        lines = [
            f"Rollback {self.run_id} of run {self.rolled_back_run_id}"
            f"{' (dry run)' if self.dry_run else ''}: {self.status}",
            f"  rows {verb}restored: {self.restored}  deleted: {self.deleted}"
            f"  recreated: {self.recreated}  already as before: {self.already}",
            f"  conflicts (changed after the run, left alone): {self.conflicts}",
        ]
        if self.conflict_sample:
            lines.append(f"  e.g. {', '.join(self.conflict_sample)}")
        if self.error:
            lines.append(f"  STOPPED: {self.error}")
        return "\n".join(lines)


class RollbackStopped(TagSysError):
    """A rollback that stopped midway (its journal pruned meanwhile, the store gone): `result`
    holds what it restored before it stopped and its own run id (which can be rolled back
    to undo it); `cause` is the error that stopped it."""

    def __init__(self, result: RollbackResult, cause: TagSysError) -> None:
        super().__init__(
            f"{cause} (rollback {result.run_id} stopped after restoring {result.restored}, "
            f"deleting {result.deleted} and re-creating {result.recreated} rows; "
            f"`--mode rollback --run-id {result.run_id}` undoes what it did)"
        )
        self.result = result
        self.cause = cause


def check_target(bind: sa.Engine, run_id: str, dry_run: bool = False) -> RunRecord:
    """The run to roll back, or a UsageError saying why it cannot be. A run read as
    abandoned is ended first (see `end_abandoned`), except for a dry run, which changes
    nothing."""
    run = get_run(bind=bind, run_id=run_id)
    if run is None:
        raise UsageError(f"no run {run_id!r} in the store: `--mode list-runs` lists the runs")
    status = run.effective_status()
    if status == "abandoned" and not dry_run:
        end_abandoned(bind=bind, run=run)  # else it beat again, or ended itself, meanwhile
        run = get_run(bind=bind, run_id=run_id) or run
        status = run.effective_status()
    if status == "running" or (status == "abandoned" and not dry_run):
        raise UsageError(
            f"run {run_id} is still running (heartbeat {run.heartbeat_at}): wait until it "
            "ends (or reads `abandoned` in list-runs), then roll it back"
        )
    reasons = {
        None: "was recorded before the journal existed",
        "off": "wrote no journal (a dry run, or TAGSYS_JOURNAL was off)",
        "pruned": "has had its journal pruned (older than TAGSYS_JOURNAL_DAYS)",
    }
    if run.journal != "on":
        raise UsageError(
            f"run {run_id} {reasons.get(run.journal, 'has no journal')}: it cannot be rolled "
            "back; run the earlier request again to restore its tags instead"
        )
    return run


def new_summary(target_run_id: str, dry_run: bool, as_of: date) -> RunSummary:
    return RunSummary(
        run_id=uuid.uuid4().hex,
        mode="rollback",
        as_of=as_of,
        tag_scope="all",
        user_scope=f"rows run {target_run_id} wrote",
        dry_run=dry_run,
        started_at=datetime.now(UTC),
        rollback={"run_id": target_run_id, "conflicts": 0, "conflict_sample": []},
    )


def execute(
    db_url: str,
    summary: RunSummary,
    *,
    batch_size: int,
    journal_on: bool,
    on_phase: Callable[[str], None] | None = None,
) -> RunSummary:
    """Restore every entry of the target run (`summary.rollback['run_id']`), in user id order."""
    assert summary.rollback is not None
    target = str(summary.rollback["run_id"])
    summary.written_at = None if summary.dry_run else datetime.now(UTC)
    request = RestoreRequest(
        db_url=db_url,
        run_id=summary.run_id,
        written_at=summary.written_at or datetime.now(UTC),
        dry_run=summary.dry_run,
        journal=journal_on,
    )
    timer = PhaseTimer(summary.phases, on_start=on_phase)
    totals = RestoreCounts()
    with timer("write"):
        try:
            _restore_all(db_url, target, request, batch_size, totals)
        finally:
            _fill(summary, totals)
    summary.finished_at = datetime.now(UTC)
    return summary


def _restore_all(
    db_url: str, target: str, request: RestoreRequest, batch_size: int, totals: RestoreCounts
) -> None:
    """Read the target's journal page by page (user id order) and restore the pages on up to
    WORKERS connections at once: pages hold disjoint users, so they never wait for each other."""
    engine = create_store_engine(db_url)
    workers = engine_adapter(engine).MAX_CONCURRENT_WRITERS or WORKERS
    pending: deque[Future[RestoreCounts]] = deque()
    after: str | None = None
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="tagsys-rollback") as pool:
            try:
                while True:
                    entries = journal.run_entries(
                        bind=engine, run_id=target, after_user=after, limit=batch_size
                    )
                    _check_still_journaled(engine, target)  # after the read: see prune_run
                    if entries:
                        pending.append(pool.submit(restore_batch, request, entries))
                        after = entries[-1].user_id
                    while pending and (len(pending) > workers or not entries):
                        totals += pending.popleft().result()
                    if not entries:
                        return
            except BaseException:
                for future in pending:  # batches not started; the running ones end first
                    future.cancel()
                _count_committed(pending, totals)
                raise
    finally:
        engine.dispose()


def _check_still_journaled(bind: sa.Engine, run_id: str) -> None:
    run = get_run(bind=bind, run_id=run_id)
    if run is None or run.journal != "on":
        raise ConflictError(
            f"the journal of run {run_id} was pruned while this rollback read it: the rows "
            "restored so far stay restored (see this rollback's counts), the others cannot be; "
            "run the request before that run again to restore its tags",
            code="journal_pruned",
        )


def _count_committed(pending: Iterable[Future[RestoreCounts]], totals: RestoreCounts) -> None:
    """Add the batches that ran to the end (and so committed) to `totals`, once the running
    ones have ended: a stopped rollback reports what it restored."""
    for future in wait(list(pending)).done:
        if not future.cancelled() and future.exception() is None:
            totals += future.result()


def _fill(summary: RunSummary, totals: RestoreCounts) -> None:
    summary.rows_updated = totals.restored
    summary.rows_inserted = totals.recreated
    summary.rows_deleted = totals.deleted
    summary.rows_unchanged = totals.already
    assert summary.rollback is not None
    summary.rollback["conflicts"] = len(totals.conflicts)
    summary.rollback["conflict_sample"] = sorted(totals.conflicts)[:CONFLICT_SAMPLE]
