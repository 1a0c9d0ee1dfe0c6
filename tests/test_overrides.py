"""Operator overrides: by default they hold until the schedule's next transition; they sit above
a running show (an operator's dark area stays dark) and below curtailment."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import installation_data, modbus_controller
from test_schedule_support import at

from lightctl.inventory.index import Inventory
from lightctl.model.values import OFF, ChannelState
from lightctl.runtime.daemon import Daemon
from schedules.builder import build

SCHEDULE = {
    "entries": [
        {"id": "normal-night", "days": "workday", "start": "19:30", "end": "21:30", "scene": "half", "priority": 10},
        {"id": "bridge-feature", "days": "workday", "start": "20:00", "end": "21:00", "scene": "all-on",
         "target": "tag:bridge", "priority": 20},
    ]
}


def data() -> dict[str, Any]:
    d = installation_data([modbus_controller(f"o{i}", i, channels=2) for i in range(4)], per_site=2)
    d["schedule"] = SCHEDULE
    d["shows"] = [{"id": "flash", "duration_s": 1.0, "cues": [{"at_s": 0, "rules": [{"target": "*", "level": 70}]}]}]
    return d


async def test_an_override_holds_until_the_next_transition_then_the_schedule_takes_over(make_farm: Any, tmp_path: Path) -> None:
    _farm, config = await make_farm(data())
    now = [at("2026-03-10 20:15").timestamp()]  # a working Tuesday evening
    daemon = Daemon(config, database=tmp_path / "o.db", schedule=build(config, Inventory(config)), clock=lambda: now[0])
    await daemon.start()
    try:
        await daemon.apply_scene("all-off", "*", user="值班员")
        override = daemon.overrides[-1]
        assert override.until == at("2026-03-10 21:00")  # the bridge feature's end: the next transition
        assert all(state == OFF for state in daemon.desired_now()[0].values())
        held = await daemon.apply_scene("all-on", "site:site-1", user="值班员", until=None)
        assert held.outcome.count("confirmed") == 2 and daemon.overrides[-1].until is None
        now[0] = at("2026-03-10 21:00:01").timestamp()
        for _ in range(50):  # the expiry check runs every second
            if len(daemon.overrides) == 1:
                break
            await asyncio.sleep(0.1)
        assert [o.until for o in daemon.overrides] == [None]
        desired = daemon.desired_now()[0]
        assert desired[("o0", "c1")] == ChannelState(True, 50.0)  # the schedule's normal night again
        assert desired[("o2", "c1")] == ChannelState(True, 100.0)  # still held by the operator
        reading = daemon.engine.reading_of("o0")
        assert reading is not None and all(abs((c.level or 0) - 50) < 0.2 for c in reading.channels.values())
    finally:
        await daemon.stop()


async def test_a_show_leaves_out_what_an_operator_holds(make_farm: Any, tmp_path: Path) -> None:
    _farm, config = await make_farm(data())
    daemon = Daemon(config, database=tmp_path / "s.db")
    await daemon.start()
    try:
        await daemon.apply_scene("all-off", "site:site-0", user="值班员", until=None)
        run = await daemon.shows.start("flash", user="导演", anyway=True)  # it says what holds it otherwise
        assert run.task is not None
        await run.task
        assert {r.controller_id for r in run.records} == {"o2", "o3"}
        desired = daemon.desired_now()[0]
        assert desired[("o0", "c1")] == OFF
    finally:
        await daemon.stop()
