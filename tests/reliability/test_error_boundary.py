"""One error boundary: one `Error:` line and exit 1, a traceback only when asked for;
bounds checked before any work; a task's own exception fails only its tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsys import cli
from tagsys.api import TagSystemAPI
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.tasks.base import BaseTagTask
from tagsys.tasks.registry import default_registry
from tests.engine.lakes import AS_OF, SHOP_TAGS, expected_tags, load_tags


def test_an_unexpected_exception_is_one_line_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(args: object) -> int:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(cli, "_dispatch", explode)

    assert cli.main(["--mode", "health"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "Error: unexpected RuntimeError: disk on fire. This is a bug or an unhandled failure of "
        "Spark or the store: run again with --log-level DEBUG for the traceback"
    ]

    assert cli.main(["--mode", "health", "--log-level", "DEBUG"]) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mode", "incremental", "--days", "800000"], "--days must be between 0 and 36500"),
        (["--mode", "incremental", "--days", "-1"], "--days must be between 0 and 36500"),
        (["--mode", "generate-data", "--users", "0"], "--users must be between 1"),
        (["--mode", "list-runs", "--limit", "0"], "--limit must be between 1"),
    ],
)
def test_argument_bounds_are_usage_errors_before_any_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main([*argv, "--db-url", f"sqlite:///{tmp_path}/never.db"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {message}") and "Traceback" not in err
    assert not (tmp_path / "never.db").exists(), "work started before the arguments were checked"


def test_an_exception_in_a_task_hook_fails_only_that_tag(
    make_api, sqlite_url: str, shop_lake: Path
) -> None:
    load_tags(sqlite_url, SHOP_TAGS)
    engine = create_store_engine(sqlite_url)
    with engine.begin() as conn:  # existing assignments of the failing tags must survive
        conn.exec_driver_sql(
            "INSERT INTO user_tags (user_id, tag_ids, tag_details) VALUES "
            '(\'u0001\', \'[101,102]\', \'{"101":{"tag_name":"big spender","tag_category":"value"},'
            '"102":{"tag_name":"young city","tag_category":"people"}}\')'
        )

    class Exploding(BaseTagTask):  # defining it registers it
        tag_id = 101
        domain = "review"

        def preprocess_data(self, raw_data):  # type: ignore[no-untyped-def]
            raise ZeroDivisionError("bad hook")

    class ExplodingFields(BaseTagTask):
        tag_id = 102
        domain = "review"

        def get_required_fields(self) -> list[str]:
            raise KeyError("no such field list")

    try:
        api: TagSystemAPI = make_api(sqlite_url, shop_lake)
        summary = api.run(api.request("task-all", as_of=AS_OF))
    finally:
        default_registry.unregister(101)
        default_registry.unregister(102)

    outcomes = {t.tag_id: t for t in summary.tags}
    assert not summary.succeeded and summary.status == "failed"
    assert outcomes[101].status == "failed" and "ZeroDivisionError: bad hook" in (
        outcomes[101].message or ""
    )
    assert outcomes[102].status == "failed" and "KeyError" in (outcomes[102].message or "")
    others = {t for t in SHOP_TAGS if t not in (101, 102)}
    assert all(outcomes[t].status == "ok" for t in others)
    expected = expected_tags(shop_lake, {t: SHOP_TAGS[t] for t in others}, AS_OF)
    stored = {u: r.tag_ids for u, r in repository.read_user_tags(bind=engine).items()}
    engine.dispose()
    assert stored["u0001"][:2] == [101, 102], summary.render()
    for user, tags in expected.items():
        kept = [t for t in stored.get(user, []) if t in others]
        assert kept == sorted(tags), user
