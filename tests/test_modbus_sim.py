"""The simulated cabinet: physics and injected faults, observed through the real driver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from test_modbus_driver import ON, Rig, every, make_rig

from drivers.base import Fault as F
from drivers.modbus import PLUGIN
from drivers.modbus.device import Cabinet
from lightctl.model.values import OFF, ChannelState, FaultKind


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = await make_rig()
    yield r
    await r.driver.close()
    await r.sim.stop()


def rated(rig: Rig, channel: str) -> float:
    return rig.ctrl.channel(channel).rated_w


async def test_power_follows_level(rig: Rig) -> None:
    for level in (100.0, 50.0, 12.5, 0.0):
        await rig.driver.apply({"c4": ChannelState(on=True, level=level)})
        reading = await rig.driver.read()
        assert reading.channels["c4"].power_w == pytest.approx(rated(rig, "c4") * level / 100, abs=0.2)
    await rig.driver.apply({"c4": OFF})
    assert (await rig.driver.read()).channels["c4"].power_w == 0


async def test_fade_ramps_the_output_not_the_setpoint(rig: Rig) -> None:
    await rig.driver.apply({"c1": ChannelState(on=True, level=0.0)})
    await rig.driver.apply({"c1": ChannelState(on=True, level=100.0, fade_s=0.6)})
    await asyncio.sleep(0.3)
    reading = await rig.driver.read(["c1"])
    assert reading.channels["c1"].level == 100.0  # the setpoint, what confirmation compares
    output = reading.measurements["output_c1_pct"]
    assert 25 < output < 80
    assert reading.channels["c1"].power_w == pytest.approx(rated(rig, "c1") * output / 100, rel=0.02)
    await asyncio.sleep(0.4)
    assert (await rig.driver.read(["c1"])).measurements["output_c1_pct"] == 100.0


async def test_energy_is_integrated_over_time(rig: Rig) -> None:
    model = rig.sim.cabinet(rig.ctrl.id).model
    clock = Clock()
    model.set_clock(clock)
    await rig.driver.apply(every(rig, ON))
    start = (await rig.driver.read()).energy_kwh
    assert start is not None
    total_w = sum(ch.rated_w for ch in rig.ctrl.channels)
    clock.t += 3600
    after = (await rig.driver.read()).energy_kwh
    assert after is not None
    assert after - start == pytest.approx(total_w / 1000, abs=0.02)
    await rig.driver.apply(every(rig, OFF))
    clock.t += 3600
    assert (await rig.driver.read()).energy_kwh == pytest.approx(after, abs=0.01)


def test_energy_of_a_fade_is_exact() -> None:
    clock = Clock()
    cabinet = Cabinet.build(1, {1: (1000.0, True)}, clock)
    cabinet.set_coil(1, True)
    cabinet.set_level(1, 0.0)
    cabinet.set_fade(1, 100.0)
    cabinet.set_level(1, 1.0)  # ramps 0 -> 1000 W over 100 s: 50 kJ, then 1000 W
    clock.t += 200
    cabinet.advance()
    assert cabinet.energy_kwh * 3.6e6 == pytest.approx(50_000 + 100_000)
    assert cabinet.circuit_power(1, clock.t) == 1000.0


async def test_voltages_and_currents_are_plausible(rig: Rig) -> None:
    await rig.driver.apply(every(rig, ON))
    reading = await rig.driver.read()
    m = reading.measurements
    volts = [m[f"voltage_l{p}_v"] for p in (1, 2, 3)]
    assert all(215 <= v <= 232 for v in volts)
    phase_w = sum(m[f"voltage_l{p}_v"] * m[f"current_l{p}_a"] * 0.95 for p in (1, 2, 3))
    assert phase_w == pytest.approx(reading.power_w, rel=0.01)


async def test_breaker_trip(rig: Rig) -> None:
    await rig.driver.apply(every(rig, ON))
    rig.sim.inject(rig.ctrl.id, F("breaker_trip", channel="c2"))
    reading = await rig.driver.read()
    assert reading.channels["c2"].on is False and reading.channels["c2"].power_w == 0
    assert FaultKind.BREAKER_TRIP in reading.channels["c2"].faults
    assert FaultKind.BREAKER_TRIP in reading.faults
    await rig.driver.apply({"c2": ON})  # the command is accepted but cannot close a tripped breaker
    assert (await rig.driver.read(["c2"])).channels["c2"].on is False
    rig.sim.clear(rig.ctrl.id, "breaker_trip")
    reading = await rig.driver.read(["c2"])
    assert reading.channels["c2"].on is True and not reading.channels["c2"].faults
    assert reading.channels["c2"].power_w == pytest.approx(rated(rig, "c2"), abs=0.2)


async def test_lamp_failure(rig: Rig) -> None:
    await rig.driver.apply(every(rig, ON))
    rig.sim.inject(rig.ctrl.id, F("lamp_failure", channel="c3", value=0.4))
    reading = await rig.driver.read()
    assert reading.channels["c3"].on is True
    assert reading.channels["c3"].power_w == pytest.approx(rated(rig, "c3") * 0.6, abs=0.2)
    rig.sim.clear(rig.ctrl.id, "lamp_failure")
    assert (await rig.driver.read()).channels["c3"].power_w == pytest.approx(rated(rig, "c3"), abs=0.2)


async def test_stuck_contactor(rig: Rig) -> None:
    await rig.driver.apply(every(rig, ON))
    rig.sim.inject(rig.ctrl.id, F("stuck_contactor", channel="c5"))
    await rig.driver.apply(every(rig, OFF))
    reading = await rig.driver.read()
    assert reading.channels["c5"].on is True  # feedback no longer follows the coil
    assert reading.channels["c5"].power_w == pytest.approx(rated(rig, "c5"), abs=0.2)
    assert reading.channels["c4"].on is False
    rig.sim.clear(rig.ctrl.id, "stuck_contactor")
    assert (await rig.driver.read()).channels["c5"].on is False


async def test_cabinet_alarms(rig: Rig) -> None:
    rig.sim.inject(rig.ctrl.id, F("door_open"))
    rig.sim.inject(rig.ctrl.id, F("phase_loss", value=2))
    reading = await rig.driver.read()
    assert {FaultKind.DOOR_OPEN, FaultKind.PHASE_LOSS} <= reading.faults
    assert reading.measurements["voltage_l2_v"] == 0
    rig.sim.clear(rig.ctrl.id)
    rig.sim.inject(rig.ctrl.id, F("supply_voltage", value=270))
    assert FaultKind.OVER_VOLTAGE in (await rig.driver.read()).faults
    rig.sim.inject(rig.ctrl.id, F("supply_voltage", value=175))
    assert FaultKind.UNDER_VOLTAGE in (await rig.driver.read()).faults
    rig.sim.clear(rig.ctrl.id)
    assert not (await rig.driver.read()).faults


async def test_fault_arguments_are_checked(rig: Rig) -> None:
    with pytest.raises(ValueError, match="unknown fault 'melted'"):
        rig.sim.inject(rig.ctrl.id, F("melted"))
    with pytest.raises(ValueError, match="needs a channel"):
        rig.sim.inject(rig.ctrl.id, F("breaker_trip"))
    with pytest.raises(ValueError, match="has no channel 'c99'"):
        rig.sim.inject(rig.ctrl.id, F("lamp_failure", channel="c99"))
    with pytest.raises(ValueError, match="exception code 9 is not a Modbus exception"):
        rig.sim.inject(rig.ctrl.id, F("error", value=9))
    with pytest.raises(KeyError, match="no simulated controller"):
        rig.sim.inject("elsewhere", F("offline"))
    assert {"offline", "slow", "error", "breaker_trip", "lamp_failure", "stuck_contactor"} <= PLUGIN.create_simulator(
        [rig.ctrl]
    ).fault_kinds


async def test_request_count_counts_every_request(rig: Rig) -> None:
    for _ in range(5):
        await rig.driver.read()
    assert rig.requests() == 5


async def test_offline_drops_open_connections(rig: Rig) -> None:
    await rig.driver.read()
    rig.sim.inject(rig.ctrl.id, F("offline"))
    await asyncio.sleep(0.05)
    assert not rig.driver.link.connected


async def test_units_behind_one_gateway_share_a_port() -> None:
    from test_modbus_driver import controller

    from drivers.base import ControllerTimeout, RequestRejected
    from drivers.modbus import ModbusDriver
    from drivers.modbus.settings import ModbusSettings

    first = controller("gw-1", port=1502, unit=1)
    second = controller("gw-2", port=1502, unit=2, timeout_s=0.3)
    sim = PLUGIN.create_simulator([first, second], any_port=True)
    await sim.start()
    endpoints = sim.endpoints()
    assert endpoints["gw-1"] == endpoints["gw-2"]
    port = endpoints["gw-1"]["port"]

    def driver(ctrl, unit):  # type: ignore[no-untyped-def]
        return ModbusDriver(ctrl.model_copy(update={"settings": ModbusSettings(host="127.0.0.1", port=port, unit=unit)}))

    one, two, stray = driver(first, 1), driver(second, 2), driver(second, 3)
    try:
        await one.apply({"c1": ON})
        assert (await one.read(["c1"])).channels["c1"].on is True
        assert (await two.read(["c1"])).channels["c1"].on is False  # a different cabinet
        with pytest.raises(RequestRejected, match="exception 0x0b"):
            await stray.read()
        sim.inject("gw-2", F("offline"))  # one unit dead behind a live gateway: it stays silent
        with pytest.raises(ControllerTimeout):
            await two.read()
        assert (await one.read()).channels["c1"].on is True
        sim.clear("gw-2", "offline")
        assert (await two.read()).channels
        assert sim.request_count("gw-1") == 4 and sim.request_count("gw-2") == 3
    finally:
        for d in (one, two, stray):
            await d.close()
        await sim.stop()


async def test_every_table_reads_from_the_model(rig: Rig) -> None:
    """An independent client (pymodbus's own) sees coils, discrete inputs and holding registers
    that follow the model, at the profile's addresses."""
    from pymodbus.client import AsyncModbusTcpClient

    await rig.driver.apply({"c1": ON, "c3": ChannelState(on=True, level=42.5, fade_s=1.5), "c2": OFF})
    rig.sim.inject(rig.ctrl.id, F("breaker_trip", channel="c1"))
    rig.sim.inject(rig.ctrl.id, F("door_open"))
    endpoint = rig.sim.endpoints()[rig.ctrl.id]
    client = AsyncModbusTcpClient(endpoint["host"], port=endpoint["port"], timeout=1, retries=0, reconnect_delay=0)
    assert await client.connect()
    try:
        coils = await client.read_coils(0, count=8, device_id=1)
        assert coils.bits[:3] == [True, False, True]  # the coil stays commanded; the breaker is what tripped
        discrete = await client.read_discrete_inputs(0, count=17, device_id=1)
        feedback, trips, door = discrete.bits[:8], discrete.bits[8:16], discrete.bits[16]
        assert feedback[:3] == [False, False, True] and trips[:3] == [True, False, False] and door is True
        holding = await client.read_holding_registers(0, count=6, device_id=1)
        assert holding.registers[4:6] == [425, 15]  # circuit 3: level 42.5 %, fade 1.5 s
        rejected = await client.read_holding_registers(200, count=1, device_id=1)
        assert rejected.isError() and rejected.exception_code == 2
    finally:
        client.close()


async def test_write_times_keep_the_arrival_of_writes_only(rig: Rig) -> None:
    import time

    before = time.monotonic()
    await rig.driver.apply(every(rig, ON))  # FC16 + FC15
    await rig.driver.read()  # FC04: not a write
    after = time.monotonic()
    times = rig.sim.write_times(rig.ctrl.id)
    assert len(times) == 2 and before <= times[0] <= times[1] <= after
