"""Fixtures of the web tests: the live server, and Debian's Chromium driven by Playwright with
every request that leaves the loopback interface blocked and recorded."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from . import _standin
from ._server import build_app, serve

CHROMIUM = os.environ.get("LANDSCAPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
SCREENSHOTS = Path(os.environ.get("LANDSCAPE_SCREENSHOTS", tempfile.gettempdir()))


def _browser_unavailable(why: str) -> None:
    message = (f"{why}. Browser tests need Debian's chromium and the Python playwright package: "
               "run scripts/install-system-deps.sh")
    # CI must never pass by skipping them; a developer without chromium may.
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class LiveServer:
    url: str
    seen: _standin.Seen


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    seen = _standin.Seen()
    with serve(build_app(seen)) as url:
        yield LiveServer(url, seen)


# The async API, not the sync one: sync Playwright keeps an event loop running in the main
# thread, after which every pytest-asyncio test of the session fails to start its own.
@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Any]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        _browser_unavailable(f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _browser_unavailable("The playwright package is not installed")
    # launch() gives Chromium a fresh throwaway profile of its own: nothing carries over.
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Traffic:
    blocked: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@pytest_asyncio.fixture(loop_scope="session")
async def page(chromium: Any) -> AsyncIterator[Any]:
    """A fresh browser context (no stored GraphiQL tabs) whose off-machine requests fail.

    The test asserts `page.traffic.blocked` is empty at the end: a page that tried to reach a
    CDN would look fine here only because the request was refused, so the attempt itself fails it.
    """
    context = await chromium.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    traffic = Traffic()

    async def gate(route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in LOOPBACK_HOSTS:
            await route.continue_()
        else:
            traffic.blocked.append(url)
            await route.abort("blockedbyclient")

    await context.route("**/*", gate)
    pg = await context.new_page()
    pg.on("request", lambda r: traffic.requested.append(r.url))
    pg.on("console", lambda m: traffic.console_errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: traffic.page_errors.append(str(e)))
    pg.traffic = traffic
    try:
        yield pg
    finally:
        await context.close()
