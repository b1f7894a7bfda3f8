"""The console's tests: one `tagsys serve` (SQLite store, the demo lake, an API key) for the
whole package, one headless Chromium (Debian's, driven by Playwright), and a page per test
that records every console error and page error."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from tests.console.support import ARTIFACTS, CHROMIUM, KEY, ConsolePage
from tests.service.conftest import make_lake, seeded_sqlite
from tests.service.support import Service, service_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser

USERS = 400
PREVIEW_WARM_SECONDS = 180


def _need_chromium() -> None:
    """Skipped where Chromium or Playwright is missing in a developer's ad-hoc run; under
    ./scripts/test.sh (= CI, where install.sh installs both) a missing one is a failure."""
    found = Path(CHROMIUM).exists()
    try:
        import playwright  # noqa: F401
    except ImportError:
        found = False
    if not found:
        message = (
            f"the console tests need {CHROMIUM} and the playwright package (./scripts/install.sh)"
        )
        if os.environ.get("CI") or os.environ.get("TAGSYS_TEST_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)


def warm_preview(service: Service) -> None:
    rule = {"logic": "AND", "conditions": [{"field": "age", "operator": ">=", "value": 0}]}
    body = {"rule": rule, "timeout_seconds": PREVIEW_WARM_SECONDS}
    # Only a head start: the tests' own previews wait as long as they need.
    with contextlib.suppress(requests.RequestException):
        requests.post(
            f"{service.url}/api/v1/rules/preview",
            json=body,
            headers=service.headers,
            timeout=PREVIEW_WARM_SECONDS + 10,
        )


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service, after one task-all: every tag has members and a history."""
    _need_chromium()
    folder = tmp_path_factory.mktemp("console")
    lake = make_lake(folder / "lake", USERS)
    store = seeded_sqlite(folder)
    env = service_env(store, lake, TAGSYS_API_KEY=KEY, TAGSYS_EXPORT_DIR=str(folder / "exports"))
    service = Service(env, folder / "service.log", workers=2)
    try:
        task = service.trigger(mode="task-all")
        warming = threading.Thread(target=warm_preview, args=(service,), daemon=True)
        warming.start()  # the preview's lake cache is built while the run goes on
        assert service.wait(task)["status"] == "completed"
        warming.join(PREVIEW_WARM_SECONDS)
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="package")
def browser(console: Service) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def ui(browser: Browser, console: Service) -> Iterator[ConsolePage]:
    """A fresh browser context (its own sessionStorage) on the console, not signed in."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = ConsolePage(context.new_page(), console)
    try:
        yield page
        page.assert_clean()
    finally:
        context.close()
