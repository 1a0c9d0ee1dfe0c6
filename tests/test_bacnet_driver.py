"""The BACnet driver against simulated buildings on loopback (bacpypes3 on both sides)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.primitivedata import Real

from drivers.bacnet import services
from drivers.bacnet.profile import ObjectRef
from drivers.bacnet.services import Write
from drivers.base import ControllerTimeout, Fault, RequestRejected
from lightctl.model.values import ChannelState, FaultKind
from tests.test_bacnet_support import building, running

ON80 = ChannelState(on=True, level=80.0)


async def test_write_at_priority_10_and_relinquish() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        result = await driver.apply({"f1": ON80, "f2": ChannelState(on=False, level=0)})
        assert result.operations == 1 and not result.rejected
        assert device.priority_slot("f1", 10) == 80.0
        assert device.priority_slot("f2", 10) == 0.0
        assert all(device.priority_slot("f1", p) is None for p in range(1, 17) if p != 10)
        reading = await driver.read(["f1", "f2"])
        assert (reading.channels["f1"].on, reading.channels["f1"].level) == (True, 80.0)
        assert reading.channels["f2"].on is False

        # the building's own schedule at priority 16 takes over once the centre lets go
        device.command("f1", 16, 25.0)
        assert device.level("f1") == 80.0
        await driver.release(["f1"])
        assert device.priority_slot("f1", 10) is None
        assert device.level("f1") == 25.0
        reading = await driver.read(["f1"])
        assert reading.channels["f1"].level == 25.0 and reading.channels["f1"].held_by is None


@pytest.mark.parametrize("profile", ["bms-lighting", "bms-legacy"])
async def test_owner_override_at_priority_8_is_reported_not_a_fault(profile: str) -> None:
    async with running(building("tower", profile=profile, priority_names={8: "大堂值班 lobby desk"},
                                owner="江北嘴金融城")) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        await driver.apply({"f1": ON80 if profile == "bms-lighting" else ChannelState(on=True)})
        device.command("f1", 8, 30.0 if profile == "bms-lighting" else 0)  # the owner dims / switches off
        reading = await driver.read(None)
        f1 = reading.channels["f1"]
        assert f1.held_by is not None and f1.held_by.startswith("priority 8 (江北嘴金融城: 大堂值班 lobby desk)")
        assert f1.held_by.endswith("30%" if profile == "bms-lighting" else "off")
        assert f1.faults == frozenset()
        # our own command still stands underneath, so it is confirmed, and it wins once the owner lets go
        assert f1.on is True and f1.level == (80.0 if profile == "bms-lighting" else None)
        expected_w = 100 * 12 * (0.30 if profile == "bms-lighting" else 0.0)
        assert reading.power_w == pytest.approx(expected_w, abs=1.0)
        device.command("f1", 8, None)
        reading = await driver.read(["f1"])
        assert reading.channels["f1"].held_by is None


async def test_write_property_multiple_is_one_request() -> None:
    async with running(building("tower", channels=8)) as (host, drivers, _):
        driver = drivers["tower"]
        await driver.connect()
        before = host.request_count("tower")
        states = {f"f{i}": ChannelState(on=True, level=10.0 * i) for i in range(1, 9)}
        assert [op.kind for op in driver.plan(states)] == ["WritePropertyMultiple"]
        result = await driver.apply(states)
        assert result.operations == 1 and host.request_count("tower") - before == 1
        assert [host.devices["tower"].level(f"f{i}") for i in range(1, 9)] == [10.0 * i for i in range(1, 9)]


async def test_writeproperty_in_parallel_where_the_device_has_no_wpm() -> None:
    async with running(building("old", profile="bms-legacy", channels=6)) as (host, drivers, _):
        driver = drivers["old"]
        await driver.connect()
        assert driver.use_wpm is False  # its protocol-services-supported says so
        states = {f"f{i}": ChannelState(on=i % 2 == 1) for i in range(1, 7)}
        plan = driver.plan(states)
        assert [op.kind for op in plan] == ["WriteProperty"] * 6 and "2 at a time" in plan[0].detail
        before = host.request_count("old")
        result = await driver.apply(states)
        assert result.operations == 6 and not result.rejected
        assert host.request_count("old") - before == 6
        assert [host.devices["old"].level(f"f{i}") for i in range(1, 7)] == [100.0, 0.0] * 3


async def test_wpm_rejected_by_the_device_falls_back_to_writeproperty() -> None:
    async with running(building("old", profile="bms-legacy", channels=3)) as (host, drivers, _):
        driver = drivers["old"]
        await driver.connect()
        driver.use_wpm = True  # as if its services-supported claimed it
        result = await driver.apply({f"f{i}": ChannelState(on=True) for i in range(1, 4)})
        assert driver.use_wpm is False and not result.rejected
        assert result.operations == 1 + 3
        assert all(host.devices["old"].level(f"f{i}") == 100.0 for i in range(1, 4))


def tower_with_scenes() -> dict[str, Any]:
    """Two dimmable floors and the facade's scene selector (a multi-state value)."""
    tower = building("tower", channels=2)
    tower["channels"].append({"id": "scene", "point": "multi-state-value:1",
                              "luminaires": {"count": 1, "kind": "decoration", "led": True, "watts": 10}})
    return tower


async def test_out_of_range_write_refused_with_a_clear_error() -> None:
    async with running(tower_with_scenes()) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        instance = driver.settings.device_instance
        # the building's scene list shrank to 3 scenes; the centre asks for scene 5 (light show)
        device.channels["scene"].obj.numberOfStates = 3
        result = await driver.apply({"f1": ON80, "scene": ChannelState(on=True, level=100), "f2": ON80})
        reason = result.rejected["scene"]
        assert f"device {instance} at" in reason
        assert "multi-state-value,1 present-value @10" in reason and "value-out-of-range" in reason
        assert set(result.rejected) == {"scene"}  # WPM stopped at the scene; the rest was resent
        assert device.level("f1") == 80.0 and device.level("f2") == 80.0
        assert device.priority_slot("scene", 10) is None
        # a single out-of-range level is refused by the device as a typed error
        write = Write("f1", ObjectRef(kind="lighting-output", instance=1), "presentValue", services.Real(140.0), 10)
        reason_wp = await driver._send_wp(write)
        assert reason_wp is not None and "lighting-output,1 present-value @10: refused" in reason_wp
        assert device.level("f1") == 80.0


async def test_read_property_multiple_in_chunks_the_device_accepts() -> None:
    async with running(building("old", profile="bms-legacy", channels=12)) as (host, drivers, _):
        driver = drivers["old"]
        await driver.connect()
        await driver.apply({f"f{i}": ChannelState(on=i <= 6) for i in range(1, 13)})
        before = host.request_count("old")
        reading = await driver.read(None)  # 12 x 3 properties + power + energy = 38, 8 at a time
        assert host.request_count("old") - before == 5
        assert [reading.channels[f"f{i}"].on for i in range(1, 13)] == [True] * 6 + [False] * 6
        assert reading.power_w == pytest.approx(sum(100 * i * 12 for i in range(1, 7)), abs=1)

        # a chunk too large for the device's 480-octet APDU is aborted; the driver splits it
        driver.rpm_chunk = 100
        reading = await driver.read(None)
        assert driver.rpm_chunk < 100
        assert [reading.channels[f"f{i}"].on for i in range(1, 13)] == [True] * 6 + [False] * 6


async def test_offline_slow_and_error_devices_raise_typed_errors() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver = drivers["tower"]
        await driver.connect()
        host.inject("tower", Fault("offline"))
        with pytest.raises(ControllerTimeout, match=r"tower: device \d+ at .* no answer within 1 s"):
            await driver.apply({"f1": ON80})
        host.clear("tower")
        host.inject("tower", Fault("error"))
        with pytest.raises(RequestRejected, match="device: operational-problem"):
            await driver.read(["f1"])
        host.clear("tower", "error")
        host.inject("tower", Fault("slow", value=1.5))
        with pytest.raises(ControllerTimeout):
            await driver.read(["f1"])
        host.clear("tower")
        assert (await driver.read(["f1"])).channels["f1"].on is False


async def test_lamp_failure_and_breaker_trip_are_reported() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver = drivers["tower"]
        await driver.apply({"f2": ChannelState(on=True, level=100)})
        host.inject("tower", Fault("lamp_failure", channel="f2", value=0.5))
        reading = await driver.read(None)
        assert reading.channels["f2"].faults == frozenset({FaultKind.LAMP_FAILURE})
        assert reading.channels["f2"].power_w == pytest.approx(200 * 12 * 0.5, abs=0.5)
        host.inject("tower", Fault("breaker_trip", channel="f2"))
        reading = await driver.read(None)
        assert FaultKind.BREAKER_TRIP in reading.channels["f2"].faults and reading.power_w == pytest.approx(0.0)


async def test_fade_by_lighting_command() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        await driver.apply({"f1": ChannelState(on=True, level=100, fade_s=0.6)})
        assert 0.0 <= device.level("f1") < 100.0  # still fading
        assert (await driver.read(["f1"])).channels["f1"].level == 100.0  # the target is set
        from tests.test_bacnet_support import eventually

        assert await eventually(lambda: device.level("f1") == 100.0, timeout_s=2.0)


async def test_simulator_restart_forgets_and_the_driver_carries_on() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver = drivers["tower"]
        await driver.apply({"f1": ON80})
        await host.restart("tower")
        reading = await driver.read(["f1"])
        assert reading.channels["f1"].on is False  # a power cycle lost the priority array
        await driver.apply({"f1": ON80})
        assert host.devices["tower"].level("f1") == 80.0
        assert (await driver.read(["f1"])).channels["f1"].level == 80.0


async def test_floor_client_sends_the_drivers_requests() -> None:
    from drivers.bacnet.floor import BacnetFloorClient
    from tests.test_bacnet_support import controller

    async with running(building("tower", channels=8), building("old", profile="bms-legacy")) as (host, _, config):
        for cid, expected in (("tower", 2), ("old", 4 + 1)):
            floor = BacnetFloorClient(controller(config, cid), {f"f{i}": ChannelState(on=True, level=60) for i in range(1, 5)})
            await floor.connect()
            try:
                before = host.request_count(cid)
                assert await floor.run() == expected  # WPM + RPM, or one WP per output + RPM
                assert host.request_count(cid) - before == expected
            finally:
                await floor.close()
        assert host.devices["tower"].level("f4") == 60.0 and host.devices["old"].level("f4") == 100.0


def test_bench_hook_makes_valid_buildings() -> None:
    from drivers.bacnet.bench import controller_data
    from tests.conftest import build_config, installation_data

    config = build_config(installation_data([controller_data(i) for i in range(3)]))
    assert [c.settings.device_instance for c in config.controllers()] == [20_000, 20_001, 20_002]


async def test_parallel_writeproperty_stays_within_the_devices_limit() -> None:
    async with running(building("old", profile="bms-legacy", channels=6)) as (host, drivers, _):
        driver = drivers["old"]
        await driver.connect()
        host.inject("old", Fault("slow", value=0.15))
        result = await driver.apply({f"f{i}": ChannelState(on=True) for i in range(1, 7)})
        assert result.operations == 6 and not result.rejected
        assert host.devices["old"].max_in_progress == driver.max_concurrent == 2


async def test_write_times_are_the_arrivals_of_writes_at_the_device() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver = drivers["tower"]
        await driver.connect()
        before = len(host.write_times("tower"))
        await driver.read(None)  # reads are not writes
        assert len(host.write_times("tower")) == before
        sent = time.monotonic()
        await driver.apply({"f1": ON80})
        times = host.write_times("tower")
        assert len(times) == before + 1 and sent <= times[-1] <= time.monotonic()
        host.inject("tower", Fault("offline"))
        with pytest.raises(ControllerTimeout):
            await driver.apply({"f1": ON80})
        assert len(host.write_times("tower")) == before + 1  # an offline device receives nothing


async def test_writes_go_straight_to_the_socket_beside_bacpypes3s_own_requests() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        await driver.connect()
        direct = driver.client.direct
        assert direct is not None and direct.available
        before = host.request_count("tower")
        for level in (10.0, 20.0, 30.0, 40.0, 50.0):
            # a write (direct) and a full read (bacpypes3) in flight together: distinct invoke ids
            result, reading = await asyncio.gather(
                driver.apply({"f1": ChannelState(on=True, level=level)}), driver.read(None)
            )
            assert result.operations == 1 and not result.rejected and reading.channels
            assert device.priority_slot("f1", 10) == level
        assert host.request_count("tower") - before == 10
        assert not direct.pending and not driver.client.app._requests
        # a refusal comes back as an error reply, decoded as bacpypes3's typed error: not sent again
        before = host.request_count("tower")
        with pytest.raises(ErrorRejectAbortNack, match="value-out-of-range"):
            await driver.write(lambda: services.wp_request(
                Write("f1", ObjectRef(kind="lighting-output", instance=1), "presentValue", Real(150.0), 10), driver.address
            ), "test write")
        assert host.request_count("tower") - before == 1 and not direct.pending


async def test_a_prepared_cue_is_on_the_socket_when_fire_returns() -> None:
    async with running(building("tower", channels=8)) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        states = {f"f{i}": ChannelState(on=True, level=5.0 * i) for i in range(1, 9)}
        assert driver.prepare(states) is None  # no session yet: the cue goes through apply()
        await driver.connect()
        direct = driver.client.direct
        assert direct is not None
        prepared = driver.prepare(states)
        assert prepared is not None
        before = host.request_count("tower")
        sending = prepared.fire()
        assert sending is not None
        assert len(direct.pending) == 1  # the WPM left before fire returned; its ack is awaited
        result = await sending
        assert result.operations == 1 and not result.rejected
        assert host.request_count("tower") - before == 1
        assert [device.level(f"f{i}") for i in range(1, 9)] == [5.0 * i for i in range(1, 9)]
        reading = await driver.read(list(states))
        assert all(reading.channels[ch].level == st.level for ch, st in states.items())


async def test_a_fired_cue_that_the_device_partly_refuses_is_reported_as_apply_reports_it() -> None:
    async with running(tower_with_scenes()) as (host, drivers, _):
        driver, device = drivers["tower"], host.devices["tower"]
        await driver.connect()
        device.channels["scene"].obj.numberOfStates = 3
        prepared = driver.prepare({"f1": ON80, "scene": ChannelState(on=True, level=100), "f2": ON80})
        assert prepared is not None
        sending = prepared.fire()
        assert sending is not None
        result = await sending
        assert set(result.rejected) == {"scene"} and "value-out-of-range" in result.rejected["scene"]
        assert device.level("f1") == 80.0 and device.level("f2") == 80.0


async def test_fire_declines_while_the_devices_concurrency_is_in_use() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver = drivers["tower"]
        await driver.connect()
        prepared = driver.prepare({"f1": ON80})
        assert prepared is not None
        assert driver._sem is not None
        for _ in range(driver.max_concurrent):  # requests in flight to the building fill its limit
            await driver._sem.acquire()
        before = host.request_count("tower")
        assert prepared.fire() is None
        await asyncio.sleep(0.05)
        assert host.request_count("tower") == before
        for _ in range(driver.max_concurrent):
            driver._sem.release()
        sending = prepared.fire()
        assert sending is not None
        assert not (await sending).rejected
        assert driver._sem._value == driver.max_concurrent  # every place handed back


async def test_a_fired_cue_cancelled_at_once_hands_back_its_invoke_id_and_place() -> None:
    async with running(building("tower")) as (host, drivers, _):
        driver = drivers["tower"]
        await driver.connect()
        host.inject("tower", Fault("offline"))  # no ack will come
        prepared = driver.prepare({"f1": ON80})
        assert prepared is not None
        sending = prepared.fire()
        assert sending is not None
        sending.cancel()  # before its task ever ran
        with pytest.raises(asyncio.CancelledError):
            await sending
        direct = driver.client.direct
        assert direct is not None and driver._sem is not None
        sem = driver._sem
        for _ in range(100):  # the replies' own callbacks run a pass or two later
            if not direct.pending and not driver.client.app._requests and sem._value == driver.max_concurrent:
                break
            await asyncio.sleep(0.01)
        assert not direct.pending and not driver.client.app._requests
        assert sem._value == driver.max_concurrent
