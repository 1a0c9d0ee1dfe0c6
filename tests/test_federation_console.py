"""The city's console (issue 19, point 3) in real headless Chromium: an operator of the city signs
in, sees every district and the controllers of all of them, switches all of them on with the one
switch and sees every controller's result; a maintenance user of the city acknowledges a district's
fault on the faults page. Real broker, real PostgreSQL for the city's records, district daemons on
their simulators; Playwright's asyncio API on the test's own loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, async_playwright, expect

from drivers.base import Fault
from lightctl.bench.consoledaemon import CHROMIUM_ARGS, chromium_path
from lightctl.process.mosquitto import Mosquitto
from tests.federation_support import CITY, GROUP, Federation, eventually, start_federation
from tests.test_federation_cases import FAULTS
from web.app import bound_port
from web.city import serve_city
from web.console_static import DIST

pytestmark = [
    pytest.mark.skipif(chromium_path() is None, reason="make test installs chromium (Debian package)"),
    pytest.mark.skipif(not (DIST / "index.html").is_file(), reason="the console is not built: make console"),
]

SECRET = "lcl_city-console"
PASSWORD = "市级值班-e2e-2026"


@pytest.fixture
async def federation(make_farm: Any, tmp_path: Path, postgres: Any) -> AsyncIterator[Federation]:
    broker = Mosquitto(group=GROUP, city=CITY, districts=["d1", "d2"])
    await asyncio.to_thread(broker.start)
    fed = await start_federation(make_farm, tmp_path, broker, postgres.create_database(f"console_{time.monotonic_ns()}"),
                                 {"d1": 3, "d2": 2}, extra={"faults": FAULTS}, controller={"poll_s": 0.5})
    try:
        yield fed
    finally:
        await fed.stop()
        await asyncio.to_thread(broker.stop)


async def sign_in(page: Page, url: str, name: str, page_id: str) -> None:
    await page.goto(f"{url}/#/{page_id}")
    await page.wait_for_url("**/login?next=*")
    await page.locator("#user").fill(name)
    await page.locator("#password").fill(PASSWORD)
    await page.get_by_role("button").click()
    await page.wait_for_url(f"**/#/{page_id}")
    await expect(page.get_by_test_id("live")).to_have_attribute("data-state", "live", timeout=15_000)


async def test_the_citys_console_shows_every_district_and_switches_all_of_them(federation: Federation) -> None:
    fed = federation
    runner = await serve_city(fed.city, "127.0.0.1", 0, local_credential=SECRET)
    url = f"http://127.0.0.1:{bound_port(runner)}"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {SECRET}"}) as admin:
            for name, role, crew in (("陈值班", "operator", None), ("wang.jun", "maintenance", "yuzhong-1")):
                body = {"name": name, "role": role, "password": PASSWORD, **({"crew": crew} if crew else {})}
                async with admin.post(f"{url}/api/v1/users", json=body) as response:
                    assert response.status == 200, await response.text()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
            try:
                page = await (await browser.new_context(viewport={"width": 1920, "height": 1080})).new_page()
                await sign_in(page, url, "陈值班", "dashboard")
                rows = page.get_by_test_id("district-row")
                await expect(rows).to_have_count(2)
                await expect(page.locator("[data-testid=district-row][data-district=d1]")).to_have_attribute("data-state", "online")
                await expect(page.get_by_test_id("nav-schedule")).to_have_count(0)  # the districts' own
                await expect(page.get_by_test_id("online-count")).to_have_text("5 / 5")
                await page.get_by_test_id("all-on").click()
                await expect(page.get_by_test_id("confirm-dialog")).to_contain_text("5")
                await page.get_by_test_id("confirm-ok").click()
                await expect(page.get_by_test_id("results")).to_have_attribute("data-done", "yes", timeout=20_000)
                await expect(page.get_by_test_id("count-all")).to_have_text("5")
                await expect(page.get_by_test_id("count-confirmed")).to_have_text("5")
                commands = await fed.city.store.commands.recent(1)
                assert commands[0].user == "陈值班" and commands[0].scene == "all-on"
                for district in ("d1", "d2"):
                    own = await fed.districts[district].store.commands.recent(1)
                    assert own[0].user == "陈值班 (city)"
                # a district going away is shown at once
                await fed.districts["d2"].stop()
                await expect(page.locator("[data-testid=district-row][data-district=d2]")).to_have_attribute(
                    "data-state", "offline", timeout=10_000)
                fed.districts.pop("d2")

                # a crew member of 渝中 acknowledges a district's fault from the city's console
                await fed.farm.inject("d1-2", Fault("door_open"))
                await eventually(lambda: any(v["district_id"] == "d1" for v in fed.city.cases.faults.values()), what="the fault at the city")
                crew = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
                await sign_in(crew, url, "wang.jun", "faults")
                row = crew.locator("[data-testid=fault-row][data-kind=door_open]").first
                await expect(row).to_be_visible(timeout=15_000)
                fault_id = await row.get_attribute("data-id") or ""
                assert fault_id.startswith("d1:")
                await crew.get_by_test_id(f"ack-{fault_id}").click()
                await expect(row).to_have_attribute("data-status", "acknowledged")
                local = fed.city.cases.faults[fault_id]["local_id"]
                d1_faults = next(s for s in fed.districts["d1"].services if type(s).__name__ == "Faults")
                assert d1_faults.service.tracker.by_id[local].acked_by == "wang.jun (city)"  # type: ignore[attr-defined]
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
