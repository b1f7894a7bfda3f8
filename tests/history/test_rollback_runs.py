"""Rollback and history over real runs (Spark) on SQLite and MariaDB (SPEC section 9).

One scenario per store: run A, change rules, run B, roll B back (the table is as after A),
roll the rollback back (as after B), a run C on some of B's users, roll B back again (C's
users are conflicts, left as C wrote them), then the user and tag timelines of it all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagsys.api import TagSystemAPI
from tagsys.cli import main
from tagsys.errors import UsageError
from tagsys.history import cursors
from tests.engine.conftest import MakeApi
from tests.engine.lakes import AS_OF, SHOP_TAGS, load_tags
from tests.history.support import contents, differing, run_journal

pytestmark = pytest.mark.spark

EVERYONE = {
    "logic": "OR",
    "conditions": [
        {"field": "age", "operator": "is_null"},
        {"field": "age", "operator": "is_not_null"},
    ],
}
CHANGED = {
    **SHOP_TAGS,
    101: (
        "big spender",
        "value",
        [
            {
                "logic": "AND",
                "conditions": [
                    {"field": "amount", "operator": ">=", "value": 1000, "type": "number"}
                ],
            }
        ],
    ),
    106: ("everyone", "people", [EVERYONE]),
}


def _run(api: TagSystemAPI, mode: str, **kwargs: object) -> str:
    summary = api.run(api.request(mode, as_of=AS_OF, **kwargs))
    assert summary.succeeded, summary.render()
    return summary.run_id


def test_rollback_restores_and_reports_conflicts(
    db_url: str, shop_lake: Path, make_api: MakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    load_tags(db_url, SHOP_TAGS)
    api = make_api(db_url, shop_lake)
    run_a = _run(api, "task-tags", tag_ids=[101, 102])  # many users get no row yet
    after_a = contents(db_url)
    load_tags(db_url, {101: CHANGED[101]})
    run_b = _run(api, "task-all")
    after_b = contents(db_url)
    created = set(after_b) - set(after_a)
    assert created and set(after_a) & {u for u in after_b if after_b[u] != after_a.get(u)}

    undo_b = api.rollback(run_b)
    assert undo_b.status == "completed" and undo_b.conflicts == 0, undo_b
    assert undo_b.deleted == len(created)
    assert contents(db_url) == after_a, differing(contents(db_url), after_a)
    record = next(r for r in api.list_runs() if r.run_id == undo_b.run_id)
    assert (record.mode, record.status, record.journal) == ("rollback", "completed", "on")
    assert record.rows_written == undo_b.restored + undo_b.deleted

    redo_b = api.rollback(undo_b.run_id)
    assert (redo_b.recreated, redo_b.conflicts) == (len(created), 0), redo_b
    assert contents(db_url) == after_b, differing(contents(db_url), after_b)

    load_tags(db_url, {106: CHANGED[106]})
    touched = sorted(after_b)[::3]
    run_c = _run(api, "task-users", user_ids=touched, tag_ids=[106])
    after_c = contents(db_url)
    b_users = set(run_journal(db_url, run_b))
    conflicts = sorted(set(touched) & b_users)
    assert conflicts and b_users - set(conflicts)

    assert api.rollback(run_b, dry_run=True).conflicts == len(conflicts)
    assert contents(db_url) == after_c  # a dry run writes nothing
    again = api.rollback(run_b)
    assert again.conflicts == len(conflicts) and set(again.conflict_sample) <= set(conflicts)
    want = {u: c for u, c in after_c.items() if u not in b_users - set(conflicts)}
    want |= {u: after_a[u] for u in b_users - set(conflicts) if u in after_a}
    assert contents(db_url) == want, differing(contents(db_url), want)

    _check_user_history(api, db_url, [run_a, run_b, undo_b.run_id, redo_b.run_id, run_c])
    _check_tag_history(api, db_url, capsys)
    _check_refusals(api, db_url, capsys)


def _check_user_history(api: TagSystemAPI, db_url: str, runs: list[str]) -> None:
    """A user who entered and left tags over several runs: every change, newest first,
    paged with cursors, and the same from the CLI."""
    user = next(u for u, e in run_journal(db_url, runs[1]).items() if e.before_ids and e.entered)
    changes, cursor = [], None
    while True:
        page = api.user_history(user, cursor=cursor, limit=2)
        changes.extend(page.changes)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [c.run_id for c in changes][::-1][:4] == runs[:4]
    b_change, undo_change = changes[::-1][1], changes[::-1][2]
    assert b_change.entered and undo_change.exited == b_change.entered
    assert set(undo_change.entered) == set(b_change.exited)
    assert main(["--db-url", db_url, "--mode", "history", "--user-id", user, "--json"]) == 0


def _check_tag_history(api: TagSystemAPI, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Tag 101: members after each run, walked back from today's members by the journal."""
    page = api.tag_history(101, limit=50)
    members_now = sum(101 in ids for ids, _ in contents(db_url).values())
    assert page.runs[0].members == members_now and page.next_cursor is None
    first_page = api.tag_history(101, limit=2)
    second = api.tag_history(101, cursor=first_page.next_cursor, limit=50)
    assert first_page.runs + second.runs == page.runs
    oldest = page.runs[-1]  # run A: every member entered
    assert oldest.members == oldest.entered and oldest.exited == 0
    capsys.readouterr()
    assert main(["--db-url", db_url, "--mode", "history", "--tag-id", "101"]) == 0
    assert "members" in capsys.readouterr().out


def _check_refusals(api: TagSystemAPI, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    dry = api.run(api.request("task-all", as_of=AS_OF, dry_run=True))
    with pytest.raises(UsageError, match="wrote no journal"):
        api.rollback(dry.run_id)
    with pytest.raises(UsageError, match="no run 'nope'"):
        api.rollback("nope")
    with pytest.raises(UsageError, match="cursor"):
        api.user_history("u0001", cursor="garbage")
    with pytest.raises(UsageError, match="cursor"):  # well-formed, but without its fields
        api.user_history("u0001", cursor=cursors.encode("user", run="r"))
    with pytest.raises(UsageError, match="cursor"):
        api.tag_history(
            101, cursor=cursors.encode("tag", at="2025-01-01T00:00:00", run="r", members="x")
        )
    assert main(["--db-url", db_url, "--mode", "rollback"]) == 1
    assert "needs --run-id" in capsys.readouterr().err
    pruned = api.prune_journal(days=0)
    assert pruned.runs >= 5
    with pytest.raises(UsageError, match="pruned"):
        api.rollback(_a_pruned_run(api))
    assert json.loads(json.dumps(api.user_history("u0001").to_dict()))["changes"] == []


def _a_pruned_run(api: TagSystemAPI) -> str:
    return next(r.run_id for r in api.list_runs(limit=50) if r.journal == "pruned")
