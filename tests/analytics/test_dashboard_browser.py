"""The dashboard in a real browser: headless Chromium (Debian's, driven by Playwright)
signs in on the page, finds every chart drawn with the numbers of known usage, changes the
range, and leaves a screenshot in the test artifacts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright

from beatmachine.core.ids import utcnow
from tests.analytics.helpers import Usage
from tests.factories import ADMIN_EMAIL, PASSWORD, Account
from tests.services import missing
from tests.smtp_server import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM_INSTALLED = CHROMIUM.exists()
ARTIFACTS = Path(os.environ.get("BM_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[str]:
    """The test's app served over real HTTP on loopback (its lifespan already runs)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_INSTALLED:
        missing(f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _marks(page: Page, chart: str, kind: str = "bar") -> list[tuple[str, str]]:
    """(label, value) of every mark of a chart, in order."""
    marks = page.locator(f"#chart-{chart} rect.{kind}")
    return [
        (str(await mark.get_attribute("data-label")), str(await mark.get_attribute("data-value")))
        for mark in await marks.all()
    ]


def _nonzero(marks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(label, value) for label, value in marks if value != "0"]


@pytest.mark.usefixtures("usage")
async def test_the_dashboard_draws_every_chart_of_known_usage_and_changes_range(
    client: httpx.AsyncClient,
    live_server: str,
    browser: Browser,
    admin: Account,
    usage: Usage,
) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    today = utcnow().date()
    monday = today - timedelta(days=today.weekday())

    await page.goto(f"{live_server}/admin/analytics")
    assert page.url == f"{live_server}/admin/analytics/login"
    await page.fill("input[name=email]", ADMIN_EMAIL)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live_server}/admin/analytics")

    [cookie] = [c for c in await context.cookies() if c["name"] == "bm_dashboard"]
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Strict")
    # The default range is the last 30 days: one bar a day, today's last.
    plays = await _marks(page, "plays")
    assert len(plays) == 30
    assert _nonzero(plays) == [(today.isoformat(), "6")]
    assert _nonzero(await _marks(page, "signups")) == [(today.isoformat(), "4")]
    assert _nonzero(await _marks(page, "active-users")) == [(today.isoformat(), "4")]
    assert await _marks(page, "instruments") == [
        ("Clave", "2"),
        ("Cowbell", "1"),
        ("Güira", "1"),
        ("Tambora", "1"),
    ]
    assert await _marks(page, "tempo") == [("150", "1"), ("180", "2")]
    keys = dict(await _marks(page, "keys"))
    assert (keys["F"], keys["C"], len(keys)) == ("2", "1", 12)
    assert await _marks(page, "retention", "cell") == [(f"{monday.isoformat()} (4) W0", "1")]
    assert await _marks(page, "trending") == [("Son", "7"), ("Tumbao", "6")]
    await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "analytics-dashboard.png"), full_page=True)

    await page.select_option("select[name=range]", "day")
    await page.click("form.range button")
    await page.wait_for_url(f"{live_server}/admin/analytics?range=day")

    assert await page.locator("main.grid").get_attribute("data-range") == "day"
    assert await _marks(page, "plays") == [(today.isoformat(), "6")]
    assert await _marks(page, "tempo") == [("150", "1"), ("180", "2")]
    csv_link = await page.locator("#chart-plays a.csv").get_attribute("href")
    assert csv_link == "/admin/analytics/plays.csv?range=day"
    assert problems == []  # no CSP violation, nothing failed to load
    await page.screenshot(path=str(ARTIFACTS / "analytics-dashboard-today.png"), full_page=True)
    await context.close()
