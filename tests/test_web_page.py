"""The status page and the sign-in page, in a real headless Chromium against a running daemon:
the browser is sent to sign in, signs in with the first admin's password, gets a cookie it
cannot read from a script, sees the status, and signs out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drivers.base import Fault
from lightctl.process.service import start_daemon
from tests.conftest import installation_data, modbus_controller
from web.app import bound_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="make test installs chromium (Debian package)")
async def test_status_page_behind_the_sign_in_page_in_headless_chromium(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    data = installation_data([modbus_controller(f"w{i}", i) for i in range(3)], api_port=0, database=str(tmp_path / "w.db"))
    farm, config = await make_farm(data)
    await farm.inject("w2", Fault("offline"))
    daemon, runner = await start_daemon(config)
    password = (tmp_path / "admin-password").read_text().strip()
    try:
        await daemon.apply_scene("all-on", "*", user="test")
        url = f"http://127.0.0.1:{bound_port(runner)}"
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = await browser.new_page(viewport={"width": 1200, "height": 700})
                await page.goto(f"{url}/")
                await page.wait_for_url(f"{url}/login?next=%2F")  # not signed in: sent to sign in
                await page.fill("#user", "admin")
                await page.fill("#password", "not the password")
                await page.click("button[type=submit]")
                assert "wrong user name or password" in await page.text_content("[role=alert]")  # type: ignore[operator]
                await page.fill("#user", "admin")
                await page.fill("#password", password)
                await page.click("button[type=submit]")
                await page.wait_for_url(f"{url}/")
                dom = await page.content()
                assert "controllers online: 2 / 3" in dom
                assert "<td>w2</td>" in dom and "offline" in dom
                assert "亮灯率 lighting-on rate" in dom and "admin (admin, session)" in dom
                cookies = await page.context.cookies()
                session = next(c for c in cookies if c["name"] == "lightctl_session")
                assert session["httpOnly"] and session["sameSite"] == "Strict" and not session["secure"]  # plain HTTP here
                assert await page.evaluate("document.cookie") == ""  # no script can read it
                shot = tmp_path / "status.png"
                await page.screenshot(path=str(shot))
                assert shot.exists() and shot.stat().st_size > 5000

                await page.click("#sign-out")
                await page.wait_for_url(f"{url}/login")
                await page.goto(f"{url}/")
                await page.wait_for_url(f"{url}/login?next=%2F")  # the session ended on the server
            finally:
                await browser.close()
        rows = await daemon.store.audit.query(limit=10)
        assert [(r.entry.method, r.entry.path, r.entry.result, r.entry.user_name) for r in reversed(rows)] == [
            ("POST", "/api/v1/session", "refused", "admin"),
            ("POST", "/api/v1/session", "accepted", "admin"),
            ("DELETE", "/api/v1/session", "accepted", "admin"),
        ]
        assert all(password not in (r.entry.detail or "") for r in rows)
    finally:
        await runner.cleanup()
        await daemon.stop()
