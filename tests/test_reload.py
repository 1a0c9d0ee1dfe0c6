"""Config reload: validated first, what changed applied without dropping the sessions to unchanged
controllers, the old config kept on any error (issue 18)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import (
    build_config,
    free_port,
    installation_data,
    local_secret,
    modbus_controller,
    with_endpoints,
)

from lightctl.model.values import OFF
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.reload import ReloadRefused


def four() -> dict[str, Any]:
    return installation_data([modbus_controller(f"m{i}", i, channels=2) for i in range(4)], per_site=2)


def only(data: dict[str, Any], ids: set[str]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for district in out["districts"]:
        for site in district["sites"]:
            site["controllers"] = [c for c in site["controllers"] if c["id"] in ids]
    return out


async def test_a_reload_keeps_unchanged_sessions_and_applies_the_rest(make_farm: Any, tmp_path: Path) -> None:
    data = four()
    farm, _ = await make_farm(data)
    live = with_endpoints(data, farm.endpoints)
    daemon = Daemon(build_config(only(live, {"m0", "m1", "m2"})), database=tmp_path / "r.db")
    await daemon.start()
    try:
        await daemon.apply_scene("all-on", "*", user="值班员", until=None)
        kept_runtime, kept_driver = daemon.engine.runtimes["m0"], daemon.engine.runtimes["m0"].driver
        requests_before = await farm.request_counts()
        changed_driver = daemon.engine.runtimes["m1"].driver
        new = only(live, {"m0", "m1", "m3"})
        for district in new["districts"]:
            for site in district["sites"]:
                for ctrl in site["controllers"]:
                    if ctrl["id"] == "m1":
                        ctrl["timeout_s"] = 0.7
        new["scenes"] = [*new.get("scenes", []), {"id": "dim", "rules": [{"target": "*", "level": 35}]}]
        report = await daemon.reload(build_config(new))
        assert (report.added, report.removed, report.changed, report.kept) == (("m3",), ("m2",), ("m1",), 1)
        assert report.scenes_changed and not report.schedule_changed and report.needs_restart == ()
        assert daemon.engine.runtimes["m0"] is kept_runtime and kept_runtime.driver is kept_driver
        assert daemon.engine.runtimes["m1"].driver is not changed_driver and "m2" not in daemon.engine.runtimes
        # The override (all-on on *) now covers m3 too: the reload's command sent it and confirmed it.
        assert await _until(lambda: not daemon.engine.unconfirmed())
        reading = daemon.engine.reading_of("m3")
        assert reading is not None and all(c.on for c in reading.channels.values())
        assert (await farm.request_counts())["m0"] == requests_before["m0"]  # nothing re-sent to what did not change
        applied = await daemon.apply_scene("dim", "*", user="值班员")
        assert applied.outcome.count("confirmed") == 3
    finally:
        await daemon.stop()


async def test_a_reload_that_cannot_apply_keeps_the_old_config(make_farm: Any, tmp_path: Path) -> None:
    data = four()
    data["shows"] = [{"id": "long", "duration_s": 30, "cues": [{"at_s": 0, "rules": [{"target": "*", "level": 30}]}]}]
    farm, _ = await make_farm(data)
    live = with_endpoints(data, farm.endpoints)
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(live, ensure_ascii=False), encoding="utf-8")
    daemon = Daemon(build_config(live), database=tmp_path / "k.db", config_path=path)
    await daemon.start()
    try:
        old = daemon.config
        await daemon.apply_scene("all-off", "site:site-1", user="值班员", until=None)
        held = daemon.overrides[-1].id
        with pytest.raises(ReloadRefused, match=rf"override #{held} \(all-off on 'site:site-1'\) would no longer apply"):
            await daemon.reload(build_config(only(live, {"m0", "m1"})))
        assert daemon.config is old and set(daemon.engine.runtimes) == {"m0", "m1", "m2", "m3"}

        path.write_text(json.dumps(live, ensure_ascii=False).replace('"profile": "cabinet-8ch"', '"profile": "no-such"', 1), encoding="utf-8")
        with pytest.raises(ReloadRefused, match="the config file has problems; the running config is kept") as refused:
            await daemon.reload_from_file()
        assert "no-such" in str(refused.value) and daemon.config is old

        await daemon.clear_override(held, user="值班员")
        run = await daemon.shows.start("long", user="导演")
        with pytest.raises(ReloadRefused, match=r"show .long. is (starting|running): stop it first"):
            await daemon.reload(build_config(live))
        await daemon.shows.stop(user="导演")
        assert run is not None
        assert daemon.desired_now()[0][("m0", "c1")] == OFF
    finally:
        await daemon.stop()


async def test_sighup_reloads_the_running_daemon(make_farm: Any, tmp_path: Path) -> None:
    data = installation_data([modbus_controller("h0", 0)], api_port=free_port(), database=str(tmp_path / "h.db"))
    farm, _ = await make_farm(data)
    live = with_endpoints(data, farm.endpoints)
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(live, ensure_ascii=False), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lightctl", "--config", str(path), "run", stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b"daemon running" not in await process.stderr.readline():
                pass
        live["scenes"] = [{"id": "dim", "rules": [{"target": "*", "level": 20}]}]
        path.write_text(json.dumps(live, ensure_ascii=False), encoding="utf-8")
        os.kill(process.pid, signal.SIGHUP)
        async with asyncio.timeout(30):
            while b"config reloaded on SIGHUP" not in await process.stderr.readline():
                pass
        url = f"http://127.0.0.1:{data['daemon']['api_port']}/api/v1/scenes"
        local = {"Authorization": f"Bearer {local_secret(tmp_path / 'h.db')}"}
        async with aiohttp.ClientSession() as session, session.get(url, headers=local) as response:
            assert "dim" in {s["id"] for s in await response.json()}
    finally:
        os.kill(process.pid, signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0


async def _until(predicate: Any, timeout: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())
