"""The whole system on free ports (web, bot polling, worker, Telegram emulator) with the demo
data, and Chromium driven by Playwright.

Browser tests get a database of their own instead of the rolled-back transaction of the other
tests: the server answers the browser's concurrent requests from its own connection pool.

CHROMIUM_PATH names the browser (default /usr/bin/chromium). Without it the tests are skipped,
unless REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from counseldesk.db import migrate
from counseldesk.demo import load_demo_data
from counseldesk.runtime import Runtime
from counseldesk.serve import Parts, System
from tests.conftest import ROOT, make_settings, recreate_database

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(path).is_file():
        reason = (
            f"no Chromium at {path}: install it (apt-get install chromium) or set CHROMIUM_PATH"
        )
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
async def system(server_url: str) -> AsyncIterator[System]:
    url = await recreate_database(server_url, "counseldesk_browser")
    migrate.upgrade(url)
    # Port 0: any free port (system.web_url tells which). model_copy: Settings validates PORT >= 1.
    settings = make_settings(database_url=url).model_copy(update={"port": 0})
    runtime = Runtime.open(settings, url)
    async with runtime.db.unit_of_work() as session:
        await load_demo_data(session)
    system = System(runtime, Parts(web=True, bot_polling=True, worker=True, emulator=True))
    await system.start()
    yield system
    await system.stop()
    await runtime.close()


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


# What a page loads by itself; the API's answers (some 404 on purpose) are the tests' business.
_LOADED_BY_THE_PAGE = {"script", "stylesheet", "image", "font"}


@pytest.fixture
async def page(browser: Browser, system: System) -> AsyncIterator[Page]:
    context: BrowserContext = await browser.new_context(
        base_url=system.web_url, viewport=DESKTOP, locale="en-GB"
    )
    context.set_default_timeout(5_000)
    page = await context.new_page()
    # What a page loads by itself (its scripts, styles, icon) must exist: a missing one shows
    # only as an error in the browser's console.
    missing: list[str] = []
    page.on(
        "response",
        lambda response: (
            missing.append(response.url)
            if response.status == 404 and response.request.resource_type in _LOADED_BY_THE_PAGE
            else None
        ),
    )
    yield page
    await context.close()
    assert missing == [], f"the pages asked for files that do not exist: {missing}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
