"""A real headless Chromium for page tests, driven by playwright.

Playwright's own browser download is not used: the fixture launches an installed Chromium
(`RESTMON_CHROMIUM`, else `chromium`/`chromium-browser`/`google-chrome` on PATH; Debian's package
is `chromium`). Without one (or without playwright) the tests are skipped with the reason, unless
`RESTMON_REQUIRE_BROWSER=1` (CI): then they fail.

A module using the browser imports the fixture:
the fixtures (registered by tests/conftest.py), and watches its pages with `Watched`.
While the browser is up, run asyncio code (`asyncio.run`) in another thread.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    configured = os.environ.get("RESTMON_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def unavailable(reason: str) -> None:
    """Skip, or fail when the browser is required."""
    if os.environ.get("RESTMON_REQUIRE_BROWSER") == "1":
        pytest.fail(f"RESTMON_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


# Module scope: playwright's sync API keeps an event loop running in the main thread while it is
# active, so `asyncio.run` fails there; other modules must not inherit that.
@pytest.fixture(scope="module", name="browser")
def fixture_browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    executable = find_chromium()
    if executable is None:
        unavailable("no Chromium found (apt-get install chromium, or set RESTMON_CHROMIUM)")
    # Chromium refuses to start its sandbox as root (CI containers run as root).
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=args, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page and what went wrong on it: console errors, uncaught exceptions, requests that
    failed (no answer) and answers with an error status."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    error_responses: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, page: Page) -> Watched:
        watched = cls(page)
        page.on("console", watched._console)
        page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
        page.on("requestfailed", watched._failed)
        page.on("response", watched._response)
        return watched

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _failed(self, request: Request) -> None:
        self.failed_requests.append(f"{request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.error_responses.append(f"{response.url}: {response.status}")

    def problems(self) -> dict[str, list[str]]:
        """Everything that went wrong, by kind; empty lists when all went well."""
        return {
            "console errors": self.console_errors,
            "page errors": self.page_errors,
            "failed requests": self.failed_requests,
            "error responses": self.error_responses,
        }

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)
