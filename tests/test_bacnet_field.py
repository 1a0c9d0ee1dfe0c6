"""What real building controllers on other BACnet stacks did, and the simulator now does too (issue
12, items 7-11): each test fails on the driver as it was before the fix."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from bacpypes3.apdu import WhoIsRequest

from drivers.bacnet.discover import discover
from drivers.bacnet.frames import BVLC_UNICAST, broadcast_frame
from drivers.bacnet.settings import BACNET_PORT
from drivers.base import Fault, WriteInDoubt
from lightctl.inventory.index import Inventory
from lightctl.model.values import ChannelState, ControllerReading
from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import EngineSettings, Status
from tests.test_bacnet_driver import tower_with_scenes
from tests.test_bacnet_support import building, eventually, running

ON80 = ChannelState(on=True, level=80.0)
BROADCAST = ("127.255.255.255", BACNET_PORT)


def _who_is(instance: int) -> WhoIsRequest:
    who_is = WhoIsRequest()
    who_is.deviceInstanceRangeLowLimit = instance
    who_is.deviceInstanceRangeHighLimit = instance
    return who_is


async def _i_ams_after(datagram: bytes, wait_s: float = 0.4) -> list[tuple[bytes, Any]]:
    """Send ``datagram`` to the loopback broadcast address from a plain socket; what came back."""
    heard: list[tuple[bytes, Any]] = []

    class Listener(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            heard.append((data, addr))

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Listener, local_addr=("127.0.0.1", 0), allow_broadcast=True)
    try:
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        transport.sendto(datagram, BROADCAST)
        await asyncio.sleep(wait_s)
    finally:
        transport.close()
    return heard


# ---------------------------------------------------------------------------- 7: broadcast Who-Is


async def test_a_who_is_to_the_broadcast_address_must_be_an_original_broadcast_npdu() -> None:
    async with running(building("tower")) as (host, _, config):
        instance = next(iter(config.controllers())).settings.device_instance
        device_host = host.endpoints()["tower"]["address"].split(":")[0]
        # the simulated device, like real ones, drops a unicast frame arriving on the broadcast address ...
        broadcast = broadcast_frame(_who_is(instance))
        unicast = BVLC_UNICAST + broadcast[2:]
        assert await _i_ams_after(unicast) == []
        # ... and answers the same Who-Is framed as a broadcast
        heard = await _i_ams_after(broadcast)
        assert [addr[0] for _, addr in heard] == [device_host]
        # the commissioning command broadcasts, so it finds the building
        found = await discover(low=instance, high=instance, broadcast=f"{BROADCAST[0]}:{BROADCAST[1]}", wait_s=0.5)
        assert [d.instance for d in found] == [instance] and found[0].name == "tower facade"


# ---------------------------------------------------------------------------- 8: no ReadPropertyMultiple


async def test_a_device_without_read_property_multiple_is_read_with_read_property() -> None:
    async with running(building("asc", profile="bms-basic", channels=3)) as (host, drivers, _):
        driver, device = drivers["asc"], host.devices["asc"]
        await driver.connect()  # identification read the device object with ReadProperty
        assert driver.use_rpm is False and driver.device_name == "asc facade"
        result = await driver.apply({"f1": ChannelState(on=True), "f2": ChannelState(on=False)})
        assert not result.rejected and device.level("f1") == 100.0
        confirm = await driver.read(["f1", "f2"])
        assert (confirm.channels["f1"].on, confirm.channels["f2"].on) == (True, False)
        device.command("f3", 8, 1)  # the owner switches f3 on at priority 8
        full = await driver.read(None)
        assert full.channels["f3"].held_by is not None and full.channels["f3"].held_by.startswith("priority 8")
        assert full.power_w == pytest.approx(100 * 12 + 300 * 12, abs=1)
        # one ReadPropertyMultiple tried (and rejected) at most; everything else one property at a time
        assert device.by_service.get("ReadPropertyMultipleRequest", 0) <= 1
        assert device.by_service["ReadPropertyRequest"] >= 2 + 2 + 3 * 3 + 1


# ---------------------------------------------------------------------------- 9: COV partly refused


async def test_cov_refused_on_some_objects_falls_back_to_polling_and_cancels_the_accepted_ones() -> None:
    async with running(building("tower", cov_lifetime_s=300, poll_s=0.2)) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        host.inject("tower", Fault("cov_refused", channel="f2"))  # COV on three of its four outputs
        readings: list[ControllerReading] = []
        driver.subscribe(readings.append)
        await driver.connect()
        assert await eventually(lambda: driver.use_cov is False and len(readings) >= 2)
        assert await eventually(lambda: device.cov_subscriptions() == [], timeout_s=1.0), device.cov_subscriptions()
        await driver.apply({"f1": ON80})  # polled now
        assert await eventually(lambda: readings[-1].channels["f1"].level == 80.0)
        await driver.close()
        assert device.cov_subscriptions() == []


async def test_cov_subscriptions_are_cancelled_when_the_driver_closes() -> None:
    async with running(building("tower", cov_lifetime_s=300)) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        driver.subscribe(lambda reading: None)
        await driver.connect()
        assert await eventually(lambda: len(device.cov_subscriptions()) == 4)
        await driver.close()
        assert device.cov_subscriptions() == []


# ---------------------------------------------------------------------------- 10: paused device


async def test_a_write_to_a_paused_device_is_in_doubt_and_lands_when_it_resumes() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        await driver.connect()
        host.inject("tower", Fault("paused"))
        before = device.requests
        with pytest.raises(WriteInDoubt, match="timed out; may still be applied, read-back decides") as info:
            await driver.apply({"f1": ON80})
        assert info.value.kind == "in_doubt"
        assert device.level("f1") == 0.0 and device.requests == before  # kept, not worked on
        host.clear("tower", "paused")
        assert await eventually(lambda: device.level("f1") == 80.0)  # the queued write, worked through
        assert device.requests == before + 1
        assert (await driver.read(["f1"])).channels["f1"].level == 80.0  # the read-back decides


async def test_the_engine_names_a_write_in_doubt_and_the_next_read_back_confirms_it() -> None:
    async with running(building("t1", timeout_s=0.5)) as (host, _, config):
        inventory = Inventory(config)
        engine = Engine(inventory, EngineSettings(deadline_s=2.0, polling=False, retry_initial_s=0.2, retry_max_s=0.5))
        await engine.start()
        try:
            await engine.connect_all()
            host.inject("t1", Fault("paused"))
            engine.set_desired(dict.fromkeys(inventory.all_keys, ON80))
            outcome = (await engine.command(inventory.all_keys)).controllers["t1"]
            assert outcome.status is Status.UNCONFIRMED and outcome.error_kind == "in_doubt"  # neither done nor failed
            assert outcome.error is not None and "timed out; may still be applied, read-back decides" in outcome.error
            host.clear("t1", "paused")
            assert await eventually(lambda: not engine.unconfirmed(), timeout_s=5.0)
            reading = engine.reading_of("t1")
            assert reading is not None and reading.channels["f1"].level == 80.0
        finally:
            await engine.stop()


# ---------------------------------------------------------------------------- 11: WPM refused part-way


@pytest.mark.parametrize("fired", [False, True], ids=["apply", "prepared-fire"])
async def test_a_wpm_refused_part_way_is_not_sent_twice(fired: bool) -> None:
    async with running(tower_with_scenes()) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        await driver.connect()
        device.channels["scene"].obj.numberOfStates = 3  # scene 5 (light show) is out of range now
        batch = {"f1": ChannelState(on=True, level=100, fade_s=2.0), "scene": ChannelState(on=True, level=100), "f2": ON80}
        before = host.request_count("tower")
        if fired:
            prepared = driver.prepare(batch)
            assert prepared is not None
            sending = prepared.fire()
            assert sending is not None
            result = await sending
        else:
            result = await driver.apply(batch)
        assert set(result.rejected) == {"scene"}
        assert "multi-state-value,1 present-value @10: refused, property: value-out-of-range" in result.rejected["scene"]
        # the WPM (f1 written, scene refused) and the rest of it (f2): f1's fade started once
        assert host.request_count("tower") - before == 2
        assert device.commands["f1"] == 1 and device.commands["f2"] == 1
        assert 0.0 < device.level("f1") < 100.0 and device.level("f2") == 80.0
