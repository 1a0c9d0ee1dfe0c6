"""Pushed readings (COV with renewal, polling where refused) and Who-Is discovery."""

from __future__ import annotations

import asyncio
import json

from drivers.bacnet.bacpypes3_internals import live_cov_subscriptions
from drivers.bacnet.discover import discover
from drivers.base import Fault
from lightctl.cli.bacnet import run as discover_command
from lightctl.cli.main import build_parser
from lightctl.model.values import ChannelState, ControllerReading
from tests.test_bacnet_support import building, eventually, running


def _subscriptions(app: object) -> int:
    """Live COV subscriptions at a simulated device's application."""
    return len(live_cov_subscriptions(app))


async def test_cov_delivers_an_owner_change_and_renews_before_expiry() -> None:
    async with running(building("tower", cov_lifetime_s=2, cov_poll_s=3600)) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        readings: list[ControllerReading] = []
        assert driver.subscribe(readings.append) is True
        await driver.connect()
        assert driver.cov is not None
        assert await eventually(lambda: _subscriptions(device.app) == 4)
        device.command("f3", 8, 55.0)  # the owner's operator, at the building
        assert await eventually(lambda: any(
            (r := reading.channels.get("f3")) is not None and r.held_by is not None for reading in readings
        ))
        held = next(r.channels["f3"] for r in readings if "f3" in r.channels and r.channels["f3"].held_by)
        assert held.held_by is not None and held.held_by.endswith("55%")
        # lifetime 2 s, renewed every second: still subscribed well past the first lifetime
        await asyncio.sleep(2.6)
        assert driver.cov.renewals >= 3
        assert _subscriptions(device.app) == 4
        count = len(readings)
        device.command("f3", 8, None)
        assert await eventually(lambda: any(r.channels.get("f3") and r.channels["f3"].held_by is None
                                            for r in readings[count:]))


async def test_cov_refused_falls_back_to_polling() -> None:
    async with running(building("old", profile="bms-legacy", poll_s=0.2)) as (_, drivers, __):
        driver = drivers["old"]
        driver.use_cov = True  # as if its services-supported claimed COV; the device refuses it
        readings: list[ControllerReading] = []
        driver.subscribe(readings.append)
        await driver.connect()
        driver.use_cov = True
        assert await eventually(lambda: len(readings) >= 2)
        assert driver.use_cov is False
        await driver.apply({"f1": ChannelState(on=True)})
        assert await eventually(lambda: readings[-1].channels["f1"].on is True)
        assert readings[-1].power_w is not None


async def test_cov_resubscribes_after_a_device_restart() -> None:
    async with running(building("tower", cov_lifetime_s=2, cov_poll_s=3600)) as (host, drivers, _):
        driver = drivers["tower"]
        readings: list[ControllerReading] = []
        driver.subscribe(readings.append)
        await driver.connect()
        assert await eventually(lambda: _subscriptions(host.devices["tower"].app) == 4)
        await host.restart("tower")
        assert _subscriptions(host.devices["tower"].app) == 0
        assert await eventually(lambda: _subscriptions(host.devices["tower"].app) == 4, timeout_s=2.5)
        count = len(readings)
        host.devices["tower"].command("f2", 8, 10.0)
        assert await eventually(lambda: any(r.channels.get("f2") and r.channels["f2"].held_by
                                            for r in readings[count:]))


async def test_discovery_finds_the_buildings_with_names_and_objects() -> None:
    async with running(building("tower"), building("old", profile="bms-legacy"), building("far")) as (host, _, config):
        instances = {c.id: c.settings.device_instance for c in config.controllers()}
        host.inject("far", Fault("offline"))
        found = await discover(low=min(instances.values()), high=max(instances.values()), wait_s=0.5)
        by_instance = {d.instance: d for d in found}
        assert set(by_instance) == {instances["tower"], instances["old"]}  # 'far' is offline
        tower = by_instance[instances["tower"]]
        assert tower.name == "tower facade" and tower.max_apdu == 1476
        assert tower.address == host.endpoints()["tower"]["address"].split(":")[0]
        assert [o for o in tower.objects if o.startswith("lighting-output")] == [f"lighting-output,{i}" for i in range(1, 5)]
        assert "accumulator,1" in tower.objects
        old = by_instance[instances["old"]]
        assert old.max_apdu == 480 and "binary-output,1" in old.objects


def test_discover_cli(capsys: object) -> None:
    async def scenario() -> None:
        async with running(building("tower")) as (_, __, config):
            instance = next(iter(config.controllers())).settings.device_instance
            args = build_parser().parse_args(
                ["discover", "bacnet", "--range", f"{instance}-{instance}", "--wait", "0.5", "--json"]
            )
            assert await asyncio.to_thread(discover_command, args) == 0
            out = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
            assert [d["instance"] for d in out] == [instance] and out[0]["name"] == "tower facade"

    asyncio.run(scenario())
