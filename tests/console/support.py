"""A console page under test: navigation, sign-in, screenshots, axe-core, and every console
error and page error it produced."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page

    from tests.service.support import Service

HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
AXE = HERE / "vendor" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
KEY = "console-test-key"
SERIOUS = ("serious", "critical")
_FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


class ConsolePage:
    def __init__(self, page: Page, service: Service) -> None:
        self.page = page
        self.service = service
        self.errors: list[str] = []
        self.expected_statuses: set[int] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.set_default_timeout(20_000)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        failed = _FAILED_LOAD.search(message.text)
        if failed and int(failed.group(1)) in self.expected_statuses:
            return
        self.errors.append(f"console error: {message.text} at {message.location.get('url')}")

    @contextmanager
    def expecting_http_errors(self, *statuses: int) -> Iterator[None]:
        """Answers with these statuses are the point here (the browser logs each one)."""
        self.expected_statuses |= set(statuses)
        try:
            yield
        finally:
            self.expected_statuses -= set(statuses)

    def assert_clean(self) -> None:
        assert not self.errors, "\n".join(self.errors)

    # --- navigation ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.service.url}/ui/"

    def goto(self, route: str) -> None:
        self.page.goto(f"{self.url}#/{route}")

    def login(self, key: str = KEY) -> None:
        self.page.goto(self.url)
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", name="Tags", level=1).wait_for()

    def screenshot(self, name: str) -> Path:
        """The top of the page at 1280x800 in tests/console/artifacts/ (gitignored)."""
        path = ARTIFACTS / f"{name}.png"
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path))
        return path

    # --- accessibility --------------------------------------------------------------------
    def axe(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations of the page as it is now."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        result = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        )
        return [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [n["target"] for n in v["nodes"][:5]],
            }
            for v in result
            if v["impact"] in SERIOUS
        ]
