"""The console end to end in Chromium, against a real `tagsys serve`: sign in, build a nested
rule visually (a problem shown at its condition, fixed), preview it (the API's count), save
it, run it and watch the run complete, see the tag's members change; revert a version; look a
user up; runs and rollback; both languages. No page logs an error."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.support import ConsolePage
from tests.service.support import FINAL

pytestmark = pytest.mark.spark

RUN_TIMEOUT_MS = 180_000


def node(ui: ConsolePage, location: str) -> Any:
    return ui.page.locator(f'[data-loc="{location}"]')


def control(ui: ConsolePage, location: str, part: str) -> Any:
    """A builder control by the rule location it edits (ids are derived from it)."""
    safe = re.sub(r"[^A-Za-z0-9]+", "-", location).rstrip("-")
    return ui.page.locator(f"#b-{safe}-{part}")


def tag_row(ui: ConsolePage, tag_id: int) -> Any:
    return ui.page.locator(f'#main tr[data-tag="{tag_id}"]')


def test_sign_in_refuses_a_wrong_key_and_keeps_the_key_in_the_tab_only(ui: ConsolePage) -> None:
    ui.page.goto(ui.url + "#/runs")
    expect(ui.page.get_by_role("heading", name="Sign in")).to_be_visible()
    ui.screenshot("login")
    with ui.expecting_http_errors(401):
        ui.page.get_by_label("API key").fill("wrong")
        ui.page.get_by_role("button", name="Sign in").click()
        expect(ui.page.get_by_role("alert")).to_have_text(
            "The service did not accept this API key."
        )
    ui.login()
    assert ui.page.evaluate("sessionStorage.getItem('tagsys.apiKey')") == ui.service.key
    assert ui.page.evaluate("JSON.stringify(localStorage)").find(str(ui.service.key)) == -1
    ui.page.get_by_role("button", name="Sign out").click()
    expect(ui.page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert ui.page.evaluate("sessionStorage.getItem('tagsys.apiKey')") is None


def test_tags_show_members_change_and_trend_and_filter(ui: ConsolePage) -> None:
    ui.login()
    rows = ui.page.locator("#main tbody tr")
    expect(rows).to_have_count(len(ui.service.get("/api/v1/tags").json()["tags"]))
    for tag_id in (1, 3):
        runs = ui.service.get(f"/api/v1/tags/{tag_id}/history").json()["runs"]
        cells = tag_row(ui, tag_id).locator("td")
        expect(cells.nth(3)).to_have_text(str(runs[0]["members"]))
        change = runs[0]["entered"] - runs[0]["exited"]
        expect(cells.nth(4)).to_have_text(f"+{change}" if change > 0 else str(change))
        expect(cells.nth(5).locator("svg polyline")).to_have_count(1)
    ui.screenshot("tags")

    ui.page.get_by_label("Category").select_option("风险管理")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("低风险用户")
    ui.page.get_by_label("Category").select_option("")
    ui.page.get_by_label("Search").fill("活跃")
    expect(rows).to_have_count(2)


def build_nested_rule(ui: ConsolePage) -> None:
    """total_asset_value >= 50000 AND (age between 18 and ? OR kyc_status = verified)."""
    first = "rules[0].conditions[0]"
    control(ui, first, "field").select_option("total_asset_value")
    control(ui, first, "op").select_option(">=")
    control(ui, first, "value").fill("50000")
    ui.page.get_by_role("button", name="Add group").click()
    group = "rules[0].conditions[1]"
    expect(control(ui, group, "logic")).to_have_value("OR")
    age = f"{group}.conditions[0]"
    control(ui, age, "field").select_option("age")
    control(ui, age, "op").select_option("in_range")
    control(ui, age, "value-0").fill("18")
    node(ui, group).get_by_role("button", name="Add condition").last.click()
    kyc = f"{group}.conditions[1]"
    control(ui, kyc, "field").select_option("kyc_status")
    control(ui, kyc, "value").fill("verified")


def test_build_preview_save_run_and_see_members_change(ui: ConsolePage) -> None:
    ui.login()
    ui.goto("rules/new")
    ui.page.get_by_label("Name", exact=True).fill("console rule")
    build_nested_rule(ui)

    # The missing upper bound is a problem of the age condition, shown there and only there.
    age = node(ui, "rules[0].conditions[1].conditions[0]")
    expect(age).to_have_class(re.compile(r"\binvalid\b"))
    expect(age.locator(".problems li")).to_contain_text("value")
    expect(ui.page.locator(".node.invalid")).to_have_count(1)
    expect(control(ui, "rules[0].conditions[1].conditions[0]", "field")).to_have_attribute(
        "aria-invalid", "true"
    )
    control(ui, "rules[0].conditions[1].conditions[0]", "value-1").fill("40")
    expect(ui.page.locator(".node.invalid")).to_have_count(0)
    expect(ui.page.locator("#rule-problems")).to_have_text("The rules are valid.")

    rules = json.loads(ui.page.locator("#rule-json").input_value())
    assert rules[0]["conditions"][1] == {
        "logic": "OR",
        "conditions": [
            {"field": "age", "operator": "in_range", "value": [18, 40]},
            {"field": "kyc_status", "operator": "=", "value": "verified"},
        ],
    }
    ui.page.get_by_role("button", name="Preview").click()
    expect(ui.page.locator("#preview-matched")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    api = ui.service.post("/api/v1/rules/preview", {"rule": rules[0]}).json()["preview"]
    expect(ui.page.locator("#preview-matched")).to_have_text(f"{api['matched']:,}")
    counts = [c["matched"] for c in api["conditions"]]
    expect(node(ui, "rules[0].conditions[0]").locator(".count").first).to_have_text(
        f"{counts[0]:,} alone"
    )
    assert api["matched"] > 0
    ui.screenshot("rule-editor")

    ui.page.get_by_role("button", name="Save as new version").click()
    expect(ui.page.locator("#tag-version")).to_have_text("Current version: 1")
    tag_id = int(ui.page.url.rsplit("/", 1)[1])
    assert ui.service.get(f"/api/v1/tags/{tag_id}").json()["tag"]["rules"] == rules

    ui.goto("tags")
    expect(tag_row(ui, tag_id).locator("td").nth(3)).to_have_text("0")

    ui.goto(f"rules/{tag_id}")
    ui.page.get_by_role("link", name="Run this tag").click()
    expect(ui.page.locator("#run-mode")).to_have_value("task-tags")
    expect(ui.page.locator(f"#run-tag-{tag_id}")).to_be_checked()
    ui.page.get_by_role("button", name="Start run").click()
    seen = follow_progress(ui)
    assert "compute" in seen["phases"], seen
    assert seen["spark"], seen  # Spark's tasks were counted while it worked
    assert all(0 <= p <= 100 for p in seen["percent"]), seen
    expect(ui.page.locator("#job-status")).to_have_attribute(
        "data-status", "completed", timeout=RUN_TIMEOUT_MS
    )
    expect(ui.page.locator("#run-tags tbody tr")).to_have_count(1)
    expect(ui.page.locator("#run-tags tbody tr td").nth(2)).to_have_text(f"{api['matched']:,}")
    ui.screenshot("job")

    ui.goto("tags")
    cells = tag_row(ui, tag_id).locator("td")
    expect(cells.nth(3)).to_have_text(f"{api['matched']:,}")
    expect(cells.nth(4)).to_have_text(f"+{api['matched']:,}")


def follow_progress(ui: ConsolePage) -> dict[str, Any]:
    """What the progress endpoint said while the job the page follows ran (as the page
    polls it)."""
    ui.page.wait_for_url(re.compile(r"#/jobs/"))
    task = ui.page.url.rsplit("/", 1)[1]
    seen: dict[str, Any] = {"phases": set(), "spark": 0, "percent": []}
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        status = ui.service.status(task)
        if status["status"] in FINAL:
            return seen
        if status["run_id"]:
            progress = ui.service.get(f"/api/v1/runs/{status['run_id']}/progress").json()
            seen["phases"].add(progress["phase"])
            if progress["spark"]:
                seen["spark"] += 1
                if progress["spark"]["percent"] is not None:
                    seen["percent"].append(progress["spark"]["percent"])
        time.sleep(0.1)
    raise AssertionError(f"job {task} did not end")


def test_revert_a_version_from_the_version_list(ui: ConsolePage) -> None:
    first = {"logic": "AND", "conditions": [{"field": "age", "operator": ">=", "value": 30}]}
    second = {"logic": "AND", "conditions": [{"field": "age", "operator": ">=", "value": 60}]}
    created = ui.service.post(
        "/api/v1/tags", {"name": "revert me", "category": "人口特征", "rules": [first]}
    ).json()["tag"]
    tag_id = created["tag_id"]
    ui.service.request("PUT", f"/api/v1/tags/{tag_id}/rules", {"rules": [second]})

    ui.login()
    ui.goto(f"rules/{tag_id}")
    expect(ui.page.locator("#tag-version")).to_have_text("Current version: 2")
    expect(control(ui, "rules[0].conditions[0]", "value")).to_have_value("60")
    ui.page.get_by_role("button", name="Changes in v2").click()
    expect(ui.page.locator("ul.diff")).to_contain_text("rules[0].conditions[0].value: 30 → 60")
    ui.page.get_by_role("button", name="Revert to v1").click()
    ui.page.get_by_role("button", name="Yes, revert to v1").click()
    expect(ui.page.locator("#tag-version")).to_have_text("Current version: 3")
    expect(control(ui, "rules[0].conditions[0]", "value")).to_have_value("30")
    assert json.loads(ui.page.locator("#rule-json").input_value()) == [first]
    stored = ui.service.get(f"/api/v1/tags/{tag_id}").json()["tag"]
    assert (stored["version"], stored["rules"]) == (3, [first])
    expect(ui.page.locator("#versions tbody tr[data-version]")).to_have_count(3)


def test_look_a_user_up_with_history_and_explain(ui: ConsolePage) -> None:
    holders = ui.service.get("/api/v1/tags/1/users", params={"limit": 1000}).json()["users"]
    user = min(holders, key=lambda u: (len(u["tag_ids"]), u["user_id"]))
    user_id = user["user_id"]
    current = ui.service.get(f"/api/v1/users/{user_id}/tags").json()["tags"]
    ui.login()
    ui.goto("users")
    ui.page.get_by_label("User id").fill(user_id)
    ui.page.keyboard.press("Enter")
    chips = ui.page.locator("#user-tags ul.chips li")
    expect(chips).to_have_count(len(current))
    assert sorted(int(x) for x in chips.evaluate_all("els => els.map(e => e.dataset.tag)")) == [
        t["tag_id"] for t in current
    ]
    expect(ui.page.locator("#user-history tbody")).to_contain_text("task-all")

    ui.page.get_by_label("Tag", exact=True).select_option("1")
    ui.page.get_by_role("button", name="Explain").click()
    expect(ui.page.locator("#explain-result .verdict")).to_contain_text("高净值用户 applies.")
    expect(ui.page.locator("#explain-result li[data-loc]").first).to_contain_text(
        "total_asset_value >= 100000"
    )
    ui.screenshot("user")
    missing = min(set(range(1, 9)) - set(user["tag_ids"]))  # one of the seed's tags
    ui.page.get_by_label("Tag", exact=True).select_option(str(missing))
    ui.page.get_by_role("button", name="Explain").click()
    expect(ui.page.locator("#explain-result .verdict")).to_contain_text("does not apply")


def test_run_history_run_page_rollback_count_and_cancel(ui: ConsolePage) -> None:
    runs = ui.service.get("/api/v1/runs", params={"mode": "task-all"}).json()["runs"]
    first = runs[-1]
    ui.login()
    ui.goto("runs")
    expect(ui.page.locator(f'#run-history tr[data-run="{first["run_id"]}"]')).to_be_visible()
    ui.page.get_by_label("Status", exact=True).select_option("failed")
    expect(ui.page.locator("#run-history tbody")).to_have_text("No runs.")
    ui.screenshot("runs")

    ui.goto(f"runs/{first['run_id']}")
    expect(ui.page.locator("#run-tags tbody tr")).to_have_count(8)
    ui.page.get_by_role("button", name="Count what a rollback would do").click()
    expect(ui.page.locator("#rollback-result")).to_contain_text("A rollback would do this")
    ui.screenshot("run")

    ui.goto("runs")
    ui.page.get_by_label("Dry run").check()
    ui.page.get_by_role("button", name="Start run").click()
    ui.page.get_by_role("button", name="Cancel job").click()
    expect(ui.page.locator("#job-status")).to_have_attribute(
        "data-status", "cancelled", timeout=RUN_TIMEOUT_MS
    )


def test_chinese_text_keeps_what_was_typed_and_lasts_across_reloads(ui: ConsolePage) -> None:
    ui.login()
    ui.goto("rules/1")
    expect(ui.page.locator("#rule-problems")).to_have_text("The rules are valid.")
    control(ui, "rules[0].conditions[0]", "value").fill("200000")
    ui.page.get_by_label("Language").select_option("zh")
    expect(ui.page.get_by_role("heading", name="规则", exact=True)).to_be_visible()
    expect(ui.page.locator("nav")).to_contain_text("规则编辑")
    expect(control(ui, "rules[0].conditions[0]", "value")).to_have_value("200000")
    expect(ui.page.locator("#rule-problems")).to_have_text("规则有效。")
    assert ui.page.evaluate("document.documentElement.lang") == "zh-CN"
    ui.screenshot("rule-editor-zh")
    ui.goto("tags")
    ui.page.reload()
    expect(ui.page.get_by_role("heading", level=1)).to_have_text("标签")
    expect(tag_row(ui, 1).locator("td").nth(3)).not_to_have_text("…")
    ui.screenshot("tags-zh")


def test_size_save_and_export_an_audience(ui: ConsolePage) -> None:
    ui.login()
    ui.goto("audiences")
    expect(ui.page.locator("#audience-count")).to_be_visible()  # {"and": [first tag]}
    ui.page.get_by_role("button", name="Add tag").click()
    ui.page.locator("#e-1-tag").select_option("2")
    ui.page.get_by_role("button", name="Add group").click()
    ui.page.locator("#e-2-op").select_option("not")
    ui.page.locator("#e-2-0-tag").select_option("3")
    expression = {"and": [1, 2, {"not": 3}]}
    expect(ui.page.locator("#audience-json")).to_have_value(json.dumps(expression, indent=2))
    api = ui.service.post("/api/v1/audiences/count", {"expression": expression}).json()
    expect(ui.page.locator("#audience-count")).to_have_text(f"{api['count']:,}")
    expect(ui.page.locator("#audience-operands li")).to_have_count(3)
    expect(ui.page.locator("#audience-operands li").nth(2)).to_have_text(
        f"not 低风险用户: {api['operands'][2]['count']:,}"
    )

    ui.page.get_by_label("Name", exact=True).fill("console audience")
    ui.page.get_by_role("button", name="Save audience").click()
    saved = ui.page.locator('#audience-list tr[data-audience="console audience"]')
    expect(saved.locator("td").nth(1)).to_have_text(f"{api['count']:,}")
    stored = ui.service.get("/api/v1/audiences/console audience").json()["audience"]
    assert stored["expression"] == expression

    ui.page.get_by_label("File path").fill("console.csv")
    ui.page.get_by_role("button", name="Export", exact=True).click()
    expect(ui.page.locator("#export-status")).to_contain_text(f"Wrote {api['count']:,} users to")
    ui.screenshot("audiences")
    ui.page.get_by_label("Language").select_option("zh")  # the page is redrawn, not reset
    expect(ui.page.get_by_role("heading", level=1)).to_have_text("人群")
    expect(ui.page.locator("#audience-json")).to_have_value(json.dumps(expression, indent=2))


PAGES = ["tags", "rules/1", "rules/new", "runs", "users/user_000001", "audiences"]


@pytest.mark.parametrize("route", PAGES)
def test_accessibility_no_serious_axe_violation(ui: ConsolePage, route: str) -> None:
    ui.login()
    ui.goto(route)
    ui.page.wait_for_load_state("networkidle")
    assert ui.axe() == []


def test_every_control_of_the_rule_editor_is_reachable_by_keyboard(ui: ConsolePage) -> None:
    ui.login()
    ui.goto("rules/1")
    expect(ui.page.locator("#rule-problems")).to_have_text("The rules are valid.")
    total = ui.page.evaluate(
        """() => {
          const found = [...document.querySelectorAll('a[href], button, input, select, textarea')]
            .filter((el) => el.offsetParent !== null && !el.disabled);
          found.forEach((el, i) => { el.dataset.kbd = String(i); });
          return found.length;
        }"""
    )
    reached: set[str] = set()
    ui.page.locator("body").focus()
    for _ in range(total + 10):
        ui.page.keyboard.press("Tab")
        mark = ui.page.evaluate("document.activeElement && document.activeElement.dataset.kbd")
        if mark is not None:
            reached.add(mark)
    assert len(reached) == total, f"{total - len(reached)} of {total} controls not reachable by Tab"
    # Keys alone build a condition: Add condition by Enter, its field chosen by keyboard.
    ui.page.get_by_role("button", name="Add condition").first.focus()
    ui.page.keyboard.press("Enter")
    added = control(ui, "rules[0].conditions[2]", "field")
    expect(added).to_be_focused()
