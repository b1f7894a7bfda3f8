"""The run summary (`engine/summary.py`): status, JSON form, text form, phase timing."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

from tagsys.engine.summary import PhaseTimer, RunSummary, TagOutcome


def _summary(*tags: TagOutcome, dry_run: bool = False) -> RunSummary:
    return RunSummary(
        run_id="r1",
        mode="task-tags",
        as_of=date(2024, 6, 30),
        tag_scope=[1, 2],
        user_scope="all",
        dry_run=dry_run,
        started_at=datetime(2024, 7, 1, 8, 0, tzinfo=UTC),
        finished_at=datetime(2024, 7, 1, 8, 1, tzinfo=UTC),
        users_evaluated=10,
        rows_inserted=3,
        rows_updated=2,
        rows_unchanged=5,
        tags=list(tags),
        phases={"read": 1.5, "write": 0.5},
        notes=["incremental runs do not refresh relative dates"],
    )


OK = TagOutcome(1, "rich", "ok", "RuleTagTask", matched=4, added=3, removed=1)
CLEARED = TagOutcome(2, "gone", "cleared", removed=2)
FAILED = TagOutcome(3, "broken", "failed", message="tag 3, rule 7, at conditions[0].field: ...")


def test_status_is_failed_iff_a_tag_failed() -> None:
    assert (_summary(OK, CLEARED).status, _summary(OK, CLEARED).succeeded) == ("completed", True)
    failed = _summary(OK, FAILED)
    assert (failed.status, failed.succeeded, failed.failed_tags) == ("failed", False, [FAILED])


def test_to_dict_is_json_with_iso_dates_and_every_count() -> None:
    data = json.loads(json.dumps(_summary(OK, FAILED).to_dict()))
    assert data["as_of"] == "2024-06-30"
    assert data["started_at"] == "2024-07-01T08:00:00+00:00"
    assert data["finished_at"] == "2024-07-01T08:01:00+00:00"
    assert data["status"] == "failed"
    assert (data["rows_inserted"], data["rows_updated"], data["rows_unchanged"]) == (3, 2, 5)
    assert data["tags"][0] == {
        "tag_id": 1,
        "tag_name": "rich",
        "status": "ok",
        "task": "RuleTagTask",
        "matched": 4,
        "added": 3,
        "removed": 1,
        "message": None,
        "unparsed_dates": {},
        "version": None,
    }
    unfinished = _summary(OK)
    unfinished.finished_at = None
    assert unfinished.to_dict()["finished_at"] is None


def test_render_names_counts_failures_notes_and_phases() -> None:
    text = _summary(OK, FAILED).render()
    assert text.splitlines()[0] == "Run r1 (task-tags): failed"
    assert "rows inserted: 3  updated: 2  unchanged: 5" in text
    assert "FAILED tag 3 (broken): tag 3, rule 7, at conditions[0].field: ..." in text
    assert "note: incremental runs do not refresh relative dates" in text
    assert "time: read 1.5s  write 0.5s" in text
    dry = _summary(OK, dry_run=True).render()
    assert "(task-tags, dry run): completed" in dry
    assert "rows that would be inserted: 3" in dry


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_phase_timer_adds_up_repeated_phases_and_speaks_only_on_a_terminal() -> None:
    phases: dict[str, float] = {}
    quiet = io.StringIO()
    timer = PhaseTimer(phases, quiet)
    with timer("read"):
        pass
    with timer("read"):
        pass
    assert list(phases) == ["read"] and phases["read"] >= 0.0
    assert quiet.getvalue() == ""
    tty = _Tty()
    try:
        with PhaseTimer(phases, tty)("write"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert "write" in phases, "a phase that raised is still timed"
    assert tty.getvalue().startswith("… write\n✓ write (")
