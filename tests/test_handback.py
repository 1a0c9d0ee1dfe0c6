"""Hand-back: the CBD towers' facades go back to their owners' BMS (BACnet: the centre's priority
relinquished), by the schedule and by an operator, proven by read-back, and taken back by any later
scene. Real BACnet simulators on loopback (in this process, to look into their priority arrays);
the Modbus cabinet in a simulator process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from drivers.bacnet.sim import BacnetSimulatorHost
from drivers.registry import get_plugin
from lightctl.config.problems import ConfigError
from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.model.desired import RELEASED, Layer
from lightctl.model.values import OFF, ChannelState
from lightctl.process.service import start_daemon
from lightctl.resolve.desired import resolve
from lightctl.resolve.loading import load_config
from lightctl.runtime.commands import CommandRefused
from lightctl.runtime.daemon import Daemon
from lightctl.store import CommandRecord
from scenes.model import SceneBook
from schedules.builder import build
from tests.conftest import (
    ROOT,
    build_config,
    free_port,
    installation_data,
    modbus_controller,
    user_with_token,
    with_endpoints,
)
from tests.test_bacnet_cov import _subscriptions
from tests.test_bacnet_support import building, eventually, running
from tests.test_cli import lightctl
from tests.test_schedule_support import at

OUTSIDE_HOURS = {
    "id": "outside-hours",
    "rules": [{"target": "*", "on": False, "level": 0}, {"target": "protocol:bacnet", "handback": True}],
}
EVENING = {"id": "evening", "days": "daily", "start": "19:30", "end": "21:30", "scene": "half", "priority": 10}


def towers_and_cabinet(**daemon: Any) -> dict[str, Any]:
    """Two towers (current BMS at priority 10; an older DDC at 12) and one Modbus cabinet."""
    controllers = [
        building("t1", address="10.97.0.1", poll_s=3600, cov_poll_s=3600),
        building("t2", profile="bms-legacy", channels=2, address="10.97.0.2", priority=12),
        modbus_controller("m0", 0, channels=2),
    ]
    data = installation_data(controllers, **daemon)
    data["scenes"].append(OUTSIDE_HOURS)
    return data


@asynccontextmanager
async def simulated(data: dict[str, Any], make_farm: Any) -> AsyncIterator[tuple[BacnetSimulatorHost, dict[str, Any]]]:
    """BACnet simulators here, the Modbus cabinet in the farm; yields the data pointing at them."""
    config = build_config(data)
    towers = [c for c in config.controllers() if c.protocol == "bacnet"]
    host: BacnetSimulatorHost = get_plugin("bacnet").create_simulator(towers, any_port=True)  # type: ignore[assignment]
    await host.start()
    try:
        modbus_only = installation_data([c for c in _controllers(data) if c["protocol"] == "modbus"])
        farm, _ = await make_farm(modbus_only)
        yield host, with_endpoints(data, {**farm.endpoints, **host.endpoints()})
    finally:
        await host.stop()


def _controllers(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for d in data["districts"] for s in d["sites"] for c in s.get("controllers", [])]


def scheduled_daemon(live: dict[str, Any], database: Path, **options: Any) -> Daemon:
    """A daemon over the simulated installation, running the schedule its config gives."""
    config = build_config(live)
    return Daemon(config, database=database, schedule=build(config, Inventory(config)), **options)


async def last_command(daemon: Daemon) -> tuple[CommandRecord, dict[str, str]]:
    command = (await daemon.store.commands.recent(1))[0]
    results = await daemon.store.commands.results(command.id)
    return command, {r.controller_id: r.status for r in results}


async def test_the_schedule_hands_the_facades_back_by_day_and_takes_them_in_the_evening(make_farm: Any, tmp_path: Path) -> None:
    data = towers_and_cabinet()
    data["schedule"] = {"default_scene": "outside-hours", "entries": [EVENING]}
    async with simulated(data, make_farm) as (host, live):
        t1, t2 = host.devices["t1"], host.devices["t2"]
        for ch in ("f1", "f2", "f3", "f4"):
            t1.command(ch, 10, 80.0)  # what the centre left there last night
        t1.command("f1", 16, 25.0)  # the building's own schedule
        t2.command("f1", 12, 1)
        t2.command("f1", 16, 1)
        now = [at("2026-03-10 14:00").timestamp()]
        daemon = scheduled_daemon(live, tmp_path / "h.db", clock=lambda: now[0])
        await daemon.start()  # reconciles now: daytime, the default scene hands the towers back
        try:
            command, results = await last_command(daemon)
            assert command.action == "reconcile" and results == {"t1": "confirmed", "t2": "confirmed", "m0": "confirmed"}
            operations = {r.controller_id: r.operations for r in await daemon.store.commands.results(command.id)}
            assert operations["t1"] == 1 and operations["t2"] == 2  # four NULLs in one WPM; WriteProperty each
            assert all(t1.priority_slot(ch, 10) is None for ch in ("f1", "f2", "f3", "f4"))
            assert t2.priority_slot("f1", 12) is None and t2.priority_slot("f2", 12) is None
            assert t1.level("f1") == 25.0 and t1.level("f2") == 0.0  # the building's schedule, its default
            assert str(t2.priority_slot("f1", 16)) == "active" and t2.level("f1") == 100.0
            _, why = daemon.desired_now()
            assert why[("t1", "f1")] == "default outside the schedule's entries (outside-hours)"

            status = daemon.status()
            assert status["channels_handed_back"] == 6 and status["channels_pending"] == 0
            assert status["controllers"]["t1"]["handed_back"] == 4 and status["controllers"]["t1"]["faults"] == []
            reading = daemon.engine.reading_of("t1")
            assert reading is not None and reading.channels["f1"].released is True and reading.channels["f1"].level == 25.0

            # the owner's operator at priority 8: shown as theirs, still handed back, no fault
            t1.command("f2", 8, 60.0)
            assert await daemon.engine.poll(daemon.engine.runtimes["t1"])
            f2 = daemon.engine.reading_of("t1").channels["f2"]  # type: ignore[union-attr]
            assert f2.held_by is not None and "priority 8" in f2.held_by and f2.released is True and not f2.faults
            assert daemon.status()["channels_pending"] == 0

            now[0] = at("2026-03-10 19:30").timestamp()  # the evening entry: the centre takes them
            report = await daemon.reconcile("schedule transition at 19:30")
            assert report is not None and report.outcome.count("confirmed") == 3
            assert [t1.priority_slot(ch, 10) for ch in ("f1", "f2", "f3", "f4")] == [50.0] * 4
            assert t1.level("f1") == 50.0 and t1.level("f2") == 60.0  # the owner's 8 still wins on f2
            assert str(t2.priority_slot("f1", 12)) == "active"
            assert daemon.status()["channels_handed_back"] == 0

            now[0] = at("2026-03-10 21:30").timestamp()  # and hands them back at the end
            report = await daemon.reconcile("schedule transition at 21:30")
            assert report is not None and report.outcome.count("confirmed") == 3
            assert all(t1.priority_slot(ch, 10) is None for ch in ("f1", "f2", "f3", "f4"))
            assert t1.level("f1") == 25.0
            assert daemon.status()["channels_handed_back"] == 6
        finally:
            await daemon.stop()


async def test_supervision_keeps_them_handed_back_and_never_converges_them_to_a_level(make_farm: Any, tmp_path: Path) -> None:
    data = towers_and_cabinet()
    data["schedule"] = {"default_scene": "outside-hours"}
    async with simulated(data, make_farm) as (host, live):
        t1 = host.devices["t1"]
        daemon = scheduled_daemon(live, tmp_path / "s.db")
        await daemon.start()
        try:
            assert await eventually(lambda: _subscriptions(t1.app) == 4)  # COV on the four outputs
            rt = daemon.engine.runtimes["t1"]
            t1.command("f1", 16, 40.0)  # the building changes its own level: that is not ours to correct
            assert await eventually(lambda: (r := daemon.engine.reading_of("t1")) is not None and r.channels["f1"].level == 40.0)
            await asyncio.sleep(0.3)
            assert t1.priority_slot("f1", 10) is None and t1.level("f1") == 40.0 and not rt.pending()

            t1.command("f3", 10, 70.0)  # someone wrote at the centre's priority: it is withdrawn again
            assert await eventually(lambda: t1.priority_slot("f3", 10) is None, timeout_s=5.0)
            assert await eventually(lambda: not rt.pending() and len(rt.handed_back()) == 4)
        finally:
            await daemon.stop()


async def test_operator_hands_back_through_the_api_and_the_cli_and_a_scene_takes_back(make_farm: Any, tmp_path: Path) -> None:
    port = free_port()
    data = towers_and_cabinet(api_port=port, database=str(tmp_path / "api.db"))
    async with simulated(data, make_farm) as (host, live):
        t1 = host.devices["t1"]
        t1.command("f1", 16, 25.0)
        config_path = tmp_path / "config.yaml"
        config_path.write_text(json.dumps(live, ensure_ascii=False), encoding="utf-8")
        daemon, runner = await start_daemon(load_config(config_path))  # no schedule: all off, held at 10
        try:
            assert t1.priority_slot("f1", 10) == 0.0
            token = await user_with_token(daemon, "duty-officer", "operator")
            headers = {"Authorization": f"Bearer {token}"}
            api = f"http://127.0.0.1:{port}/api/v1"
            async with aiohttp.ClientSession(headers=headers) as session:
                events = await session.ws_connect(f"{api}/ws")
                assert [e["type"] for e in await events.receive_json(timeout=5)] == ["hello"]
                async with session.post(f"{api}/handback", json={"target": "controller:t1", "until": "none"}) as response:
                    result = await response.json()
                    assert response.status == 200, result
                assert result["scene"] == "handback" and result["controllers"]["t1"]["status"] == "confirmed"
                # the console hears of it: t1's channels now run at the owner's level
                event: dict[str, Any] = {}
                while event.get("type") != "state" or event["controller"] != "t1":
                    frame = await events.receive_json(timeout=5)  # a frame is a list of events
                    event = next((e for e in frame if e["type"] == "state" and e["controller"] == "t1"), frame[-1])
                assert event["channels"]["f1"] == {"on": True, "level": 25.0, "released": True, "held_by": None}
                await events.close()
                assert all(t1.priority_slot(ch, 10) is None for ch in ("f1", "f2", "f3", "f4"))
                async with session.get(f"{api}/controllers/t1") as response:
                    f1 = (await response.json())["channels"]["f1"]
                assert f1["control"] == "owner" and f1["confirmed"] is True and f1["desired"] == {"handed_back": True}
                assert f1["reported"]["released"] is True and f1["reported"]["level"] == 25.0 and f1["reported"]["faults"] == []
                async with session.get(f"{api}/status") as response:
                    status = await response.json()
                assert status["channels_handed_back"] == 4 and status["controllers"]["t1"]["pending"] == 0
                assert status["overrides"][-1]["scene"] == "handback" and status["overrides"][-1]["user"] == "duty-officer"
                command = (await daemon.store.commands.recent(1))[0]
                assert (command.user, command.action, command.scene, command.target) == (
                    "duty-officer", "override", "handback", "controller:t1")

                # a selector reaching the Modbus cabinet is refused before anything is sent
                async with session.post(f"{api}/handback", json={"target": "*"}) as response:
                    refused = await response.json()
                assert response.status == 400 and "m0 (modbus)" in refused["error"] and "t1" not in refused["error"]
                assert (await daemon.store.commands.recent(1))[0].id == command.id

                # any later scene on them takes them back: slot 10 written again
                async with session.post(f"{api}/scenes/half/apply", json={"target": "protocol:bacnet", "until": "none"}) as response:
                    assert response.status == 200 and (await response.json())["summary"]["confirmed"] == 2
                assert [t1.priority_slot(ch, 10) for ch in ("f1", "f2", "f3", "f4")] == [50.0] * 4
                assert [o["scene"] for o in daemon.status()["overrides"]] == ["half"]  # the hand-back is superseded

            code, out, err = await lightctl("--config", str(config_path), "handback", "site:site-0, !protocol:modbus", "--json")
            assert code == 0, err
            assert json.loads(out)["summary"] == {"confirmed": 2, "unconfirmed": 0, "failed": 0}
            assert t1.priority_slot("f1", 10) is None and t1.level("f1") == 25.0
            code, out, err = await lightctl("--config", str(config_path), "handback", "controller:m0")
            assert code == 1 and "m0 (modbus)" in err and "Traceback" not in err
            code, out, _ = await lightctl("--config", str(config_path), "status")
            assert code == 0 and "handed back to their owners 6" in out
        finally:
            await runner.cleanup()
            await daemon.stop()


async def test_a_dimming_curtailment_leaves_the_owners_channels_and_off_takes_them(make_farm: Any, tmp_path: Path) -> None:
    data = towers_and_cabinet()
    data["schedule"] = {"default_scene": "outside-hours"}
    async with simulated(data, make_farm) as (host, live):
        t1 = host.devices["t1"]
        t1.command("f4", 16, 90.0)
        daemon = scheduled_daemon(live, tmp_path / "c.db")
        await daemon.start()
        try:
            dimmed = await daemon.curtail("protocol:bacnet", 50, user="调度")
            assert dimmed.shed_channels == 0 and t1.priority_slot("f4", 10) is None and t1.level("f4") == 90.0
            off = await daemon.curtail("controller:t1", 0, user="调度")
            assert off.shed_channels == 1 and off.shed_luminaires == 400  # f4, as the owner ran it
            assert t1.priority_slot("f4", 10) == 0.0 and t1.level("f4") == 0.0
            await daemon.restore(None, user="调度")
            assert t1.priority_slot("f4", 10) is None and t1.level("f4") == 90.0
        finally:
            await daemon.stop()


async def test_bacnet_read_back_says_whether_the_centres_slot_is_empty() -> None:
    async with running(building("new"), building("old", profile="bms-legacy", priority=12, channels=2)) as (host, drivers, _):
        for cid, ours in (("new", 10), ("old", 12)):
            driver, device = drivers[cid], host.devices[cid]
            await driver.apply({"f1": ChannelState(True, 80.0), "f2": ChannelState(True, 80.0)})
            result = await driver.release(["f1"])
            assert result.operations == 1 and not result.rejected
            assert device.priority_slot("f1", ours) is None and device.priority_slot("f2", ours) is not None
            device.command("f2", 8, 0)  # the owner above us on f2: our slot read on its own
            for reading in (await driver.read(["f1", "f2"]), await driver.read(None)):
                assert reading.channels["f1"].released is True and reading.channels["f2"].released is False
            device.command("f1", 8, 1)  # and above an empty slot
            assert (await driver.read(["f1"])).channels["f1"].released is True


def test_config_refuses_a_hand_back_that_reaches_other_protocols() -> None:
    data = towers_and_cabinet()
    data["schedule"] = {"default_scene": "outside-hours",
                        "entries": [{**EVENING, "scene": "handback", "target": "site:site-0, !controller:t2"}]}
    data["scenes"].append({"id": "facades-back", "rules": [{"target": "controller:t1, controller:m0", "handback": True}]})
    data["scenes"].append({"id": "bad-rule", "rules": [{"target": "*", "handback": True, "level": 30}]})
    data["shows"] = [{"id": "s", "duration_s": 10, "cues": [{"at_s": 0, "scene": "outside-hours"},
                                                           {"at_s": 1, "rules": [{"target": "*", "handback": True}]}]}]
    with pytest.raises(ConfigError) as info:
        build_config(data)
    text = str(info.value)
    assert "a hand-back rule sets no state; remove level" in text
    data["scenes"].pop()
    with pytest.raises(ConfigError) as info:
        build_config(data)
    text = str(info.value)
    assert "scenes[2].rules[0].target" in text and "'controller:t1, controller:m0' of scene 'facades-back'" in text
    assert "m0 (modbus)" in text and "t1 (bacnet)" not in text
    assert "shows[0].cues[0].scene" in text and "shows[0].cues[1].rules[0].handback" in text
    data["scenes"].pop()
    data["shows"] = []
    data["schedule"]["default_scene"] = "handback"  # the built-in scene, on everything
    with pytest.raises(ConfigError) as info:
        build_config(data)
    text = str(info.value)
    assert "schedule.default_scene: the default scene 'handback' cannot be handed back" in text
    assert "schedule.entries[0].target: entry 'evening' (handback on 'site:site-0, !controller:t2')" in text
    assert text.count("m0 (modbus)") == 2
    data["schedule"]["default_scene"] = "outside-hours"
    data["schedule"]["entries"][0]["target"] = "protocol:bacnet"
    config = build_config(data)
    assert config.schedule.default_scene == "outside-hours"
    data["schedule"]["default_scene"] = "outside"
    with pytest.raises(ConfigError, match=r"schedule\.default_scene: unknown scene 'outside'"):
        build_config(data)


def test_the_layers_decide_as_for_any_state() -> None:
    config = build_config(towers_and_cabinet())
    inventory = Inventory(config)
    book = SceneBook(config.all_scenes(), inventory)
    instant = at("2026-03-10 14:00")

    def state(*layers: Layer) -> dict[tuple[str, str], Any]:
        return resolve(instant, inventory, book, None, layers, "outside-hours")[0]

    base = state()
    assert base[("t1", "f1")] is RELEASED and base[("t2", "f1")] is RELEASED and base[("m0", "c1")] == OFF
    show = Layer("show", None, "*", "flash", states={("t1", "f1"): ChannelState(True, 70.0)})
    held = Layer("override", "handback", "controller:t1", "#1")
    assert state(show)[("t1", "f1")] == ChannelState(True, 70.0)  # a show takes a handed-back channel
    assert state(show, held)[("t1", "f1")] is RELEASED  # an operator's hand-back sits above the show
    assert state(held, Layer("override", "half", "channel:t1/f1", "#2"))[("t1", "f1")] == ChannelState(True, 50.0)
    assert state(Layer("curtail", None, "*", "#3", cap=50))[("t1", "f1")] is RELEASED
    assert state(Layer("curtail", None, "*", "#3", cap=0))[("t1", "f1")] == OFF


async def test_the_daemon_refuses_before_sending(tmp_path: Path) -> None:
    config: Config = build_config(towers_and_cabinet())
    daemon = Daemon(config, database=tmp_path / "r.db")
    await daemon.start(reconcile=False)
    try:
        with pytest.raises(CommandRefused, match=r"reaches 1 controller\(s\) .*: m0 \(modbus\)"):
            await daemon.handback("*", user="值班员")
        with pytest.raises(CommandRefused, match="scene 'handback' on 'site:site-0' cannot be handed back"):
            await daemon.apply_scene("handback", "site:site-0", user="值班员")
        assert await daemon.store.commands.recent(5) == [] and daemon.overrides == []
        # a driver with nobody to hand back to refuses rather than pretends
        result = await daemon.engine.runtimes["m0"].driver.release(["c1"])
        assert result.operations == 0 and "no owner" in result.rejected["c1"]
    finally:
        await daemon.stop()


def test_the_shipped_config_hands_the_towers_back_outside_the_evening() -> None:
    config = load_config(ROOT / "config.yaml")
    inventory = Inventory(config)
    book, schedule = SceneBook(config.all_scenes(), inventory), build(config, inventory)
    towers = inventory.select("protocol:bacnet")
    assert towers == inventory.select("site:jiangbeizui-towers, site:danzishi-towers")

    def desired(when: str) -> dict[tuple[str, str], Any]:
        return resolve(at(when), inventory, book, schedule, (), config.schedule.default_scene)[0]

    for when in ("2026-03-10 14:00", "2026-03-10 21:30", "2026-03-11 03:00"):  # a working Tuesday
        state = desired(when)
        assert all(state[key] is RELEASED for key in towers), when
        assert not any(state[key] is RELEASED for key in inventory.all_keys - towers), when
    evening = desired("2026-03-10 20:00")
    assert all(isinstance(evening[key], ChannelState) and evening[key].on for key in towers - inventory.select("kind:decoration"))
