"""The Modbus driver against the real simulator on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.base import ControllerTimeout, ControllerUnreachable, Fault, RequestRejected
from drivers.modbus import PLUGIN, ModbusDriver
from drivers.modbus.settings import ModbusSettings
from drivers.modbus.sim import ModbusSimulator
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import OFF, ChannelState

ON = ChannelState(on=True, level=100.0)


def controller(
    cid: str = "cab-1", profile: str = "cabinet-8ch", circuits: int = 8, timeout_s: float = 1.0, **settings: Any
) -> ControllerConfig:
    dimmable = profile == "cabinet-8ch"
    return ControllerConfig.model_validate(
        {
            "id": cid,
            "protocol": "modbus",
            "profile": profile,
            "timeout_s": timeout_s,
            "host": "127.0.0.1",
            "port": 1502,
            "unit": 1,
            **settings,
            "channels": [
                {
                    "id": f"c{n}",
                    "point": n,
                    "dimmable": dimmable,
                    "luminaires": {"count": 10, "kind": "landscape", "led": True, "watts": 50.0 * n},
                }
                for n in range(1, circuits + 1)
            ],
        }
    )


def reach(ctrl: ControllerConfig, sim: ModbusSimulator, **override: Any) -> ControllerConfig:
    endpoint = dict(sim.endpoints()[ctrl.id])
    unit = override.pop("unit", 1)
    return ctrl.model_copy(update={"settings": ModbusSettings(unit=unit, **endpoint), **override})


@dataclass
class Rig:
    ctrl: ControllerConfig
    sim: ModbusSimulator
    driver: ModbusDriver

    def requests(self) -> int:
        return self.sim.request_count(self.ctrl.id)


async def make_rig(profile: str = "cabinet-8ch", circuits: int = 8, timeout_s: float = 1.0) -> Rig:
    ctrl = controller(profile=profile, circuits=circuits, timeout_s=timeout_s)
    sim = PLUGIN.create_simulator([ctrl], any_port=True)
    await sim.start()
    driver = ModbusDriver(reach(ctrl, sim))
    return Rig(ctrl, sim, driver)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = await make_rig()
    yield r
    await r.driver.close()
    await r.sim.stop()


@pytest.fixture
async def relay_rig() -> AsyncIterator[Rig]:
    r = await make_rig("cabinet-12ch-relay", 12)
    yield r
    await r.driver.close()
    await r.sim.stop()


def every(rig: Rig, state: ChannelState) -> dict[str, ChannelState]:
    return {ch.id: state for ch in rig.ctrl.channels}


async def test_all_on_is_three_requests_and_reads_back(rig: Rig) -> None:
    states = every(rig, ON)
    result = await rig.driver.apply(states)
    reading = await rig.driver.read(states)
    assert result.operations == 2 and not result.rejected
    assert rig.requests() == 3
    assert [op.kind for op in rig.driver.plan(states)] == ["write_registers", "write_coils"]
    for ch in rig.ctrl.channels:
        got = reading.channels[ch.id]
        assert got.on is True and got.level == 100.0
        assert got.power_w == pytest.approx(ch.rated_w, rel=1e-3)
    assert reading.power_w == pytest.approx(sum(ch.rated_w for ch in rig.ctrl.channels), rel=1e-3)
    for phase in (1, 2, 3):
        assert 215 <= reading.measurements[f"voltage_l{phase}_v"] <= 232
        assert reading.measurements[f"current_l{phase}_a"] > 0


async def test_all_off_is_two_requests(rig: Rig) -> None:
    await rig.driver.apply(every(rig, ON))
    before = rig.requests()
    await rig.driver.apply(every(rig, OFF))
    reading = await rig.driver.read(every(rig, OFF))
    assert rig.requests() - before == 2
    assert all(r.on is False and r.power_w == 0 for r in reading.channels.values())
    assert reading.power_w == 0


async def test_levels_are_written_in_tenths_of_a_percent(rig: Rig) -> None:
    states = {f"c{n}": ChannelState(on=True, level=12.3 * n) for n in range(1, 9)}
    await rig.driver.apply(states)
    reading = await rig.driver.read(states)
    for ch, state in states.items():
        assert reading.channels[ch].level == pytest.approx(state.level, abs=0.05)
    full = rig.ctrl.channel("c8").rated_w
    assert reading.channels["c8"].power_w == pytest.approx(full * 0.984, rel=1e-3)


async def test_a_gap_splits_the_writes(rig: Rig) -> None:
    states = {"c1": ON, "c2": ON, "c5": ON, "c6": ON}
    plan = rig.driver.plan(states)
    assert [(op.kind, op.target) for op in plan] == [
        ("write_registers", "holding registers 0..3"),
        ("write_registers", "holding registers 8..11"),
        ("write_coils", "coils 0..1"),
        ("write_coils", "coils 4..5"),
    ]
    await rig.driver.apply(states)
    assert rig.requests() == 4


async def test_off_channels_fill_gaps_instead_of_splitting(rig: Rig) -> None:
    states = {**every(rig, OFF), "c1": ON, "c8": ON}
    plan = rig.driver.plan(states)
    assert [(op.kind, op.target) for op in plan] == [
        ("write_registers", "holding registers 0..15"),
        ("write_coils", "coils 0..7"),
    ]


async def test_off_channels_that_do_not_close_a_gap_are_not_written(rig: Rig) -> None:
    plan = rig.driver.plan({"c1": ON, "c3": OFF, "c5": ON})
    assert [(op.kind, op.target) for op in plan] == [
        ("write_registers", "holding registers 0..1"),
        ("write_registers", "holding registers 8..9"),
        ("write_coils", "coils 0..0"),
        ("write_coils", "coils 2..2"),
        ("write_coils", "coils 4..4"),
    ]


def test_runs_split_at_the_protocol_limits() -> None:
    from drivers.modbus.protocol import MAX_WRITE_COILS, MAX_WRITE_REGISTERS, _runs

    cells = {a: (a % 7, None) for a in range(300)}
    assert [(first, len(values)) for first, values, _ in _runs(cells, MAX_WRITE_REGISTERS)] == [
        (0, 123), (123, 123), (246, 54)
    ]
    coils = {a: (1, None) for a in range(4000)}
    assert [len(values) for _, values, _ in _runs(coils, MAX_WRITE_COILS)] == [1968, 1968, 64]


async def test_a_batch_is_forced(rig: Rig) -> None:
    states = every(rig, ON)
    await rig.driver.apply(states)
    await rig.driver.apply(states)
    assert rig.requests() == 4


async def test_unknown_channel_is_reported_not_sent(rig: Rig) -> None:
    result = await rig.driver.apply({"c1": ON, "nope": ON})
    assert result.rejected == {"nope": "cab-1 has no channel 'nope'"}
    assert result.operations == 2


async def test_relay_profile_other_vendor(relay_rig: Rig) -> None:
    states = every(relay_rig, ChannelState(on=True, level=100))
    plan = relay_rig.driver.plan(states)
    assert [(op.kind, op.target) for op in plan] == [("write_coils", "coils 100..111")]
    await relay_rig.driver.apply(states)
    reading = await relay_rig.driver.read(states)
    assert relay_rig.requests() == 2
    for ch in relay_rig.ctrl.channels:
        assert reading.channels[ch.id].on is True and reading.channels[ch.id].level is None
        assert reading.channels[ch.id].power_w == pytest.approx(ch.rated_w, abs=1)
    # 12 x 10 x 50 n W = 39 kW: its 32-bit power only decodes right with the low word first
    assert reading.power_w == pytest.approx(sum(ch.rated_w for ch in relay_rig.ctrl.channels), abs=2)
    assert reading.power_w > 65535 / 2


async def test_slow_device_times_out_within_timeout() -> None:
    r = await make_rig(timeout_s=0.3)
    try:
        r.sim.inject(r.ctrl.id, Fault("slow", value=2.0))
        started = time.monotonic()
        with pytest.raises(ControllerTimeout, match=r"cab-1: no reply to read_input_registers \(FC04\)"):
            await r.driver.read()
        assert time.monotonic() - started < 0.6
        r.sim.clear(r.ctrl.id, "slow")
        assert (await r.driver.read()).channels
    finally:
        await r.driver.close()
        await r.sim.stop()


async def test_exception_reply_is_rejected_with_its_name(rig: Rig) -> None:
    rig.sim.inject(rig.ctrl.id, Fault("error", value=4))
    with pytest.raises(RequestRejected) as caught:
        await rig.driver.apply({"c1": ON})
    message = str(caught.value)
    assert "write_registers (FC16) at 0..1" in message and "0x04 SERVER DEVICE FAILURE" in message
    assert caught.value.controller_id == "cab-1"
    rig.sim.clear(rig.ctrl.id, "error")
    assert (await rig.driver.apply({"c1": ON})).operations == 2


async def test_illegal_value_is_rejected(rig: Rig) -> None:
    from drivers.modbus.protocol import write_registers

    with pytest.raises(RequestRejected, match="0x03 ILLEGAL DATA VALUE"):
        await rig.driver.link.execute(write_registers(0, [5000], ("c1",)))


async def test_unknown_unit_gets_gateway_exception(rig: Rig) -> None:
    other = ModbusDriver(reach(rig.ctrl, rig.sim, unit=7))
    try:
        with pytest.raises(RequestRejected, match="refused by unit 7: exception 0x0b"):
            await other.read()
    finally:
        await other.close()
    assert (await rig.driver.read()).channels  # the device itself still answers


async def test_unreachable_when_nothing_listens(rig: Rig) -> None:
    rig.sim.inject(rig.ctrl.id, Fault("offline"))
    with pytest.raises(ControllerUnreachable, match=r"cannot connect to 127\.0\.0\.1"):
        await rig.driver.read()


async def test_reconnects_after_the_simulator_restarts_on_the_same_port(rig: Rig) -> None:
    await rig.driver.apply(every(rig, ON))
    port = rig.sim.endpoints()[rig.ctrl.id]["port"]
    rig.sim.inject(rig.ctrl.id, Fault("offline"))
    await asyncio.sleep(0.05)
    with pytest.raises(ControllerUnreachable):
        await rig.driver.read()
    rig.sim.clear(rig.ctrl.id, "offline")
    reading = await rig.driver.read()
    assert rig.sim.endpoints()[rig.ctrl.id]["port"] == port
    assert all(r.on for r in reading.channels.values())
    await rig.sim.settle()


async def test_whole_new_simulator_on_the_same_port() -> None:
    r = await make_rig()
    port = r.sim.endpoints()[r.ctrl.id]["port"]
    await r.driver.apply(every(r, ON))
    await r.sim.stop()
    again = ModbusSimulator([r.ctrl.model_copy(update={"settings": ModbusSettings(host="127.0.0.1", port=port)})])
    await again.start()
    try:
        reading = await r.driver.read()  # the old connection is dead: the driver reconnects by itself
        assert not any(x.on for x in reading.channels.values())  # a fresh cabinet, contactors open
    finally:
        await r.driver.close()
        await again.stop()


async def test_a_prepared_batch_is_on_the_wire_when_fire_returns(rig: Rig) -> None:
    await rig.driver.connect()
    states = {**every(rig, ChannelState(on=True, level=40.0)), "nope": ON}
    prepared = rig.driver.prepare(states)
    assert prepared is not None
    before = rig.requests()
    sending = prepared.fire()
    assert sending is not None
    assert rig.driver.link.in_flight == 1  # written before fire returned, its reply awaited
    result = await sending
    assert result == await rig.driver.apply(states)  # the same as apply: operations, refusals
    assert result.operations == 2 and set(result.rejected) == {"nope"}
    assert rig.requests() - before == 4
    reading = await rig.driver.read(every(rig, ON))
    assert all(r.on and r.level == pytest.approx(40.0, abs=0.05) for r in reading.channels.values())


async def test_fire_declines_and_sends_nothing_when_the_link_is_busy_or_down(rig: Rig) -> None:
    states = every(rig, ON)
    prepared = rig.driver.prepare(states)
    assert prepared is not None
    assert prepared.fire() is None  # never connected
    await rig.driver.connect()
    rig.sim.inject(rig.ctrl.id, Fault("slow", value=0.2))
    reading = asyncio.create_task(rig.driver.read())
    await asyncio.sleep(0.05)
    before = rig.requests()
    assert prepared.fire() is None  # the poll holds the link
    await reading
    assert rig.requests() == before
    rig.sim.clear(rig.ctrl.id, "slow")
    sending = prepared.fire()
    assert sending is not None
    await sending


async def test_a_fired_batch_cancelled_at_once_frees_the_link(rig: Rig) -> None:
    await rig.driver.connect()
    prepared = rig.driver.prepare(every(rig, ON))
    assert prepared is not None
    sending = prepared.fire()
    assert sending is not None
    sending.cancel()  # before its task ever ran
    with pytest.raises(asyncio.CancelledError):
        await sending
    # the reply still due was given up with its connection (the cabinet may still be busy with
    # the request); the link's turn was handed back, so the next apply reconnects and sends
    assert rig.driver.link.in_flight == 0 and not rig.driver.link.connected
    again = rig.driver.prepare(every(rig, OFF))
    assert again is not None and again.fire() is None  # nothing to fire on: apply() it is
    await rig.driver.apply(every(rig, OFF))
    reading = await rig.driver.read(every(rig, OFF))
    assert all(r.on is False for r in reading.channels.values())


async def test_the_simulator_notes_the_arrival_of_writes_not_reads(rig: Rig) -> None:
    await rig.driver.connect()
    before = len(rig.sim.write_times(rig.ctrl.id))
    await rig.driver.read()
    assert len(rig.sim.write_times(rig.ctrl.id)) == before
    sent = time.monotonic()
    result = await rig.driver.apply(every(rig, ON))
    times = rig.sim.write_times(rig.ctrl.id)
    assert len(times) == before + result.operations == before + 2
    assert all(sent <= t <= time.monotonic() for t in times[before:])
