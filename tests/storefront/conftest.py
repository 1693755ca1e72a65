"""A real headless Chromium (Debian's, driven by Playwright's sync API) pointed at the real stack's gateway."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "storefront"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# No sandbox (root in CI containers), no GPU, and none of the background calls Chromium makes to Google: the
# machine may be offline, and the storefront must not need the internet anyway.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


_screenshots_taken = False


@pytest.fixture(scope="session")
def artifacts() -> Path:
    global _screenshots_taken
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _screenshots_taken = True
    return ARTIFACTS


def pytest_terminal_summary(terminalreporter):
    """Say where the screenshots are, after the results (output during a test is captured)."""
    if _screenshots_taken:
        terminalreporter.write_line(f"storefront screenshots: {ARTIFACTS}")


@pytest.fixture(scope="session")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium) or set "
                    "CHROMIUM=/path/to/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class PageWatch:
    """Everything a page said on its console, every uncaught error, and every API answer it got."""

    def __init__(self, page):
        self.console_errors: list[tuple[str, str]] = []   # (text, url of the source)
        self.page_errors: list[str] = []
        self.responses: list[tuple[str, str, int]] = []   # (method, url, status)
        self.checkout_keys: list[str] = []                # Idempotency-Key of each checkout request, in order
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("response", lambda r: self.responses.append((r.request.method, r.url, r.status)))
        page.on("request", self._request)

    def _console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append((message.text, (message.location or {}).get("url", "")))

    def _request(self, request) -> None:
        if request.method == "POST" and request.url.endswith("/checkout"):
            self.checkout_keys.append(request.headers.get("idempotency-key", ""))

    def unexpected_console_errors(self) -> list[tuple[str, str]]:
        """Console errors the page is responsible for.

        Chromium itself logs "Failed to load resource: ... status of N" for every non-2xx answer to fetch(); no page
        can silence that. Such a line is accepted only when the test caused exactly that answer on purpose (the
        same number of responses with that status from that URL); anything else is the page's fault.
        """
        expected: dict[tuple[int, str], int] = {}
        for _method, url, status in self.responses:
            if status >= 400:
                expected[(status, url)] = expected.get((status, url), 0) + 1
        unexpected = []
        for text, url in self.console_errors:
            prefix = "Failed to load resource: the server responded with a status of "
            status = int(text[len(prefix):].split()[0]) if text.startswith(prefix) else None
            if status is not None and expected.get((status, url), 0) > 0:
                expected[(status, url)] -= 1
            else:
                unexpected.append((text, url))
        return unexpected


@pytest.fixture
def shop_page(browser, stack):
    """A fresh browser profile (so a fresh shopper) on the storefront, with its console watched."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.urls["api-gateway"])
    page = context.new_page()
    page.set_default_timeout(30_000)  # generous: a loaded 2-core machine starts Chromium slowly
    watch = PageWatch(page)
    yield page, watch
    context.close()
