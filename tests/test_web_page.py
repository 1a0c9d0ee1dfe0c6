"""The status page, rendered by a real headless Chromium against a running daemon."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

from drivers.base import Fault
from lightctl.process.service import start_daemon
from tests.conftest import installation_data, modbus_controller
from web.app import bound_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def chromium(*args: str) -> str:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return out.decode()


@pytest.mark.skipif(CHROMIUM is None, reason="make test installs chromium (Debian package)")
async def test_status_page_in_headless_chromium(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = installation_data([modbus_controller(f"w{i}", i) for i in range(3)], api_port=0, database=str(tmp_path / "w.db"))
    farm, config = await make_farm(data)
    await farm.inject("w2", Fault("offline"))
    daemon, runner = await start_daemon(config)
    try:
        await daemon.apply_scene("all-on", "*", user="test")
        url = f"http://127.0.0.1:{bound_port(runner)}/status"
        dom = await chromium("--dump-dom", url)
        assert "controllers online: 2 / 3" in dom
        assert "<td>w2</td>" in dom and "offline" in dom
        assert "亮灯率 lighting-on rate" in dom
        shot = tmp_path / "status.png"
        await chromium(f"--screenshot={shot}", "--window-size=1200,700", url)
        assert shot.exists() and shot.stat().st_size > 5000
    finally:
        await runner.cleanup()
        await daemon.stop()
