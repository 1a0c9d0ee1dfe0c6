"""``/api/v1/status`` is built once and shared by callers within a second (fifty consoles polling
it doubled a one switch over 5,000 controllers), yet whoever has just acted reads its effect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from conftest import installation_data, modbus_controller

from lightctl.runtime.daemon import Daemon
from web.app import create_app
from web.context import STATUS
from web.shared_status import SharedStatus


def data() -> dict[str, Any]:
    return installation_data([modbus_controller(f"s{i}", i, channels=2) for i in range(4)], per_site=2)


async def test_callers_share_a_build_until_it_is_a_second_old_or_something_was_done(make_farm: Any, tmp_path: Path) -> None:
    _farm, config = await make_farm(data())
    daemon = Daemon(config, database=tmp_path / "st.db")
    await daemon.start()
    clock = [1000.0]
    app = create_app(daemon, local_credential="secret")
    app[STATUS] = SharedStatus(daemon, clock=lambda: clock[0])
    try:
        async with TestClient(TestServer(app), headers={"Authorization": "Bearer secret"}) as client:
            first = await client.get("/api/v1/status")
            etag = first.headers["ETag"]
            assert first.status == 200 and (await first.json())["overrides"] == []
            clock[0] += 0.5
            again = await client.get("/api/v1/status")
            assert again.headers["ETag"] == etag and app[STATUS].builds_saved == 1
            unchanged = await client.get("/api/v1/status", headers={"If-None-Match": etag})
            assert unchanged.status == 304

            applied = await client.post("/api/v1/scenes/all-off/apply", json={"target": "*"})
            assert applied.status == 200, await applied.text()
            after = await client.get("/api/v1/status")  # the same instant: the override is there
            assert after.headers["ETag"] != etag
            assert [o["scene"] for o in (await after.json())["overrides"]] == ["all-off"]

            shared = after.headers["ETag"]
            clock[0] += 1.0  # a second on: built afresh, though nothing was done
            assert (await client.get("/api/v1/status")).headers["ETag"] != shared
    finally:
        await daemon.stop()
