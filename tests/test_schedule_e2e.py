"""End to end: the daemon, the schedule and the runner against simulated Modbus cabinets on loopback.

What the simulators hold is read back independently, with a fresh Modbus driver per controller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import installation_data, modbus_controller
from test_schedule_support import TZ, at

from drivers.registry import get_plugin
from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.model.schedule import ScheduleConfig
from lightctl.runtime.daemon import Daemon
from schedules.builder import build
from schedules.runner import ScheduleRunner

SCHEDULE = {
    "entries": [
        {"id": "normal-night", "days": "workday", "start": "19:30", "end": "21:30", "scene": "half", "priority": 10},
        {"id": "bridge-feature", "days": "workday", "start": "20:00", "end": "21:00", "scene": "all-on",
         "target": "tag:bridge", "priority": 20},
    ]
}


def _data(schedule: dict[str, Any]) -> dict[str, Any]:
    data = installation_data([modbus_controller(f"m{i}", i, channels=4) for i in range(4)], per_site=2)
    data["schedule"] = schedule
    return data


async def _levels(config: Config) -> dict[tuple[str, str], float]:
    """Output (0 when off) of every channel, read from the simulators over Modbus TCP."""
    plugin = get_plugin("modbus")
    out: dict[tuple[str, str], float] = {}
    for ctrl in config.controllers():
        driver = plugin.create_driver(ctrl)
        try:
            async with asyncio.timeout(5):
                reading = await driver.read()
        finally:
            await driver.close()
        for channel_id, channel in reading.channels.items():
            out[(ctrl.id, channel_id)] = (channel.level or 0.0) if channel.on else 0.0
    return out


async def _wait_levels(config: Config, expected: dict[tuple[str, str], float], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while (levels := await _levels(config)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"simulators hold {levels}, expected {expected}")
        await asyncio.sleep(0.1)


def _expected(config: Config, level_of: Callable[[str], float]) -> dict[tuple[str, str], float]:
    inventory = Inventory(config)
    return {key: level_of(info.site.id) for key, info in inventory.channels.items()}


async def test_daemon_started_mid_evening_turns_the_lights_to_the_scheduled_scene_at_once(
    make_farm: Any, tmp_path: Path
) -> None:
    _farm, config = await make_farm(_data(SCHEDULE))
    schedule = build(config, Inventory(config))
    evening = at("2026-03-10 20:15")  # a working Tuesday: normal night, and the bridge feature
    daemon = Daemon(config, database=tmp_path / "d.db", schedule=schedule, clock=evening.timestamp)
    assert await _levels(config) == _expected(config, lambda site: 0.0)
    started = time.monotonic()
    await daemon.start()  # no waiting for the next transition (21:00)
    try:
        elapsed = time.monotonic() - started
        # site-0 is tagged bridge: all-on; site-1 the normal night at half.
        assert await _levels(config) == _expected(config, lambda site: 100.0 if site == "site-0" else 50.0)
        assert elapsed < 5.0
        _, why = daemon.desired_now()
        assert why[("m0", "c1")] == "schedule bridge-feature: 20:00 to 21:00 (all-on)"
        assert why[("m2", "c1")] == "schedule normal-night: 19:30 to 21:30 (half)"
    finally:
        await daemon.stop()


def _soon(seconds: float) -> datetime:
    return datetime.now(TZ).replace(microsecond=0) + timedelta(seconds=seconds)


def _with_entry(config: Config, start: datetime, end: datetime, scene: str, target: str) -> Config:
    """The config with one daily entry from ``start`` to ``end`` (set once the simulators run)."""
    if start.hour < 12 <= end.hour:
        pytest.skip("straddles noon, the operating-day boundary")  # pragma: no cover
    entry = {"id": "soon", "days": "daily", "start": f"{start:%H:%M:%S}", "end": f"{end:%H:%M:%S}",
             "scene": scene, "target": target, "priority": 10}
    return config.model_copy(update={"schedule": ScheduleConfig.model_validate({"entries": [entry]})})


async def test_a_transition_fires_and_the_simulators_follow(make_farm: Any, tmp_path: Path) -> None:
    _farm, config = await make_farm(_data({}))
    start, end = _soon(2), _soon(4)
    config = _with_entry(config, start, end, "half", "*")
    schedule = build(config, Inventory(config))
    daemon = Daemon(config, database=tmp_path / "d.db", schedule=schedule)
    await daemon.start()
    runner = ScheduleRunner(schedule, daemon.reconcile, zone=daemon.tz)
    try:
        runner.start(reconcile=False)
        assert runner.next_transition == start
        assert await _levels(config) == _expected(config, lambda site: 0.0)
        await _wait_levels(config, _expected(config, lambda site: 50.0), limit_s=start.timestamp() - time.time() + 2.0)
        assert time.time() >= start.timestamp()
        assert runner.next_transition == end
        await _wait_levels(config, _expected(config, lambda site: 0.0), limit_s=end.timestamp() - time.time() + 2.0)
        assert time.time() >= end.timestamp()
        commands = await daemon.store.commands.recent(10)
        reasons = [c.target for c in commands if c.action == "reconcile"]
        assert f"schedule transition at {start.isoformat()}: +soon (half on *)" in reasons
        assert f"schedule transition at {end.isoformat()}: -soon (half on *)" in reasons
    finally:
        await runner.stop()
        await daemon.stop()


async def test_the_daemon_service_runs_the_schedule(make_farm: Any, tmp_path: Path) -> None:
    """``lightctl run`` (service.start_daemon) starts the runner: a transition fires with nobody asking."""
    from lightctl.process.service import start_daemon

    _farm, config = await make_farm(_data({}))
    start, end = _soon(2), _soon(60)
    config = _with_entry(config, start, end, "all-on", "tag:bridge")
    daemon, web_runner = await start_daemon(config, database=str(tmp_path / "d.db"), api_port=0)
    try:
        assert await _levels(config) == _expected(config, lambda site: 0.0)
        await _wait_levels(
            config, _expected(config, lambda site: 100.0 if site == "site-0" else 0.0),
            limit_s=start.timestamp() - time.time() + 2.0,
        )
        assert time.time() >= start.timestamp()
    finally:
        await web_runner.cleanup()
        await daemon.stop()
