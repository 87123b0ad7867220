"""The live leaderboard in a real browser: Debian's headless Chromium, driven by Playwright over the DevTools
protocol (no browser download: deploy/chromium.sh installs the distribution's package if it is missing).

Load the page on a phone-sized screen, stream a match result into the broker, and watch the rows reorder to
the new standings without a reload. The screenshot is kept in tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.integration.test_leaderboard import T, br_events, json_standings, produce, wait_until
from tests.support.services import REPO

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    done = subprocess.run([str(REPO / "deploy" / "chromium.sh")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"deploy/chromium.sh failed:\n{done.stderr[-2000:]}"
    return done.stdout.strip().splitlines()[-1]


async def page_order(page) -> list[str]:
    return await page.eval_on_selector_all("#rows tr", "rows => rows.map(r => r.dataset.team)")


async def test_rows_move_live_in_headless_chromium(settings, topics, start_worker, chromium, tmp_path):
    from playwright.async_api import async_playwright

    worker = start_worker()
    setup, later = br_events(2)
    await produce(settings, setup)
    after_one = wait_until(lambda: (s := json_standings(worker.url)) and s[0][2] > 0 and s, 60, "match 1 standings")

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))
            await page.goto(f"{worker.url}/tournaments/{T}/leaderboard?stage=br-finals")
            assert await page_order(page) == [t for t, _, _ in after_one]
            await page.wait_for_selector("#status.live", timeout=30_000)
            # Phone layout: the wide columns are hidden, nothing overflows sideways.
            assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert not await page.is_visible("th.wide")
            await page.screenshot(path=str(ARTIFACTS / "leaderboard-before.png"), full_page=True)

            await produce(settings, later)
            after_two = wait_until(
                lambda: (s := json_standings(worker.url)) and s != after_one and s, 60, "match 2 standings"
            )
            expected = [t for t, _, _ in after_two]
            deadline = time.monotonic() + 30
            while await page_order(page) != expected:
                assert time.monotonic() < deadline, (
                    f"page rows {await page_order(page)} never became {expected}; console: {console}"
                )
                await page.wait_for_timeout(200)
            moved = [t for t in expected if expected.index(t) != [x for x, _, _ in after_one].index(t)]
            assert moved, "the second match moved no team"
            # The moved rows are marked for the viewer, and the points shown are the new ones.
            assert await page.locator("#rows .delta").count() > 0
            first_points = await page.inner_text("#rows tr:first-child td.points")
            assert int(first_points) == after_two[0][2]
            await page.wait_for_timeout(700)  # let the move animation finish before the picture
            await page.screenshot(path=str(ARTIFACTS / "leaderboard.png"), full_page=True)
        finally:
            await context.close()
    assert httpx.get(f"{worker.url}/healthz", timeout=5).status_code == 200
    assert (ARTIFACTS / "leaderboard.png").stat().st_size > 10_000
