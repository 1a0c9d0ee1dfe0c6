"""The simulator and the frame vocabulary, checked against python-dali's own decoding and client."""

from __future__ import annotations

import asyncio
import time

import pytest
from dali.address import GearBroadcast, GearGroup, GearShort
from dali.driver.daliserver import DaliServer
from dali.gear import colour, general

from drivers.base import Fault
from drivers.dali import frames
from drivers.dali.frames import ReplyKind
from drivers.dali.levels import kelvin_to_mirek
from drivers.dali.sim import FRAME_S, QUERY_S, DaliSimulatorHost, SimGateway
from lightctl.model.values import ChannelState, Colour
from tests.test_dali_common import controller, controller_data, no_leftover_tasks, running


def _line(gear_count: int = 8):
    gw = SimGateway(controller(controller_data(lines=1, gear=gear_count, groups=2, cct_line=1)), timing=False)
    return gw.lines[1]


def test_send_twice_needs_two_identical_frames_in_a_row() -> None:
    line = _line()
    now = 100.0
    set_scene = frames.store_scene(GearShort(1), 3, 200)
    line.execute(set_scene[0].frame, now)
    line.execute(set_scene[1].frame, now + 0.01)  # once: ignored
    assert line.gear[1].scenes[3] == 255
    line.execute(frames.query_level(2).frame, now + 0.03)  # another frame breaks the pair
    line.execute(set_scene[1].frame, now + 0.04)
    assert line.gear[1].scenes[3] == 255
    line.execute(set_scene[1].frame, now + 0.20)  # too late after the one before
    assert line.gear[1].scenes[3] == 255
    line.execute(set_scene[1].frame, now + 0.25)
    assert line.gear[1].scenes[3] == 200


def test_dt8_needs_enable_device_type_right_before() -> None:
    line = _line()
    mirek = kelvin_to_mirek(4000)
    line.execute(general.DTR0(mirek & 0xFF).frame)
    line.execute(general.DTR1(mirek >> 8).frame)
    line.execute(colour.SetTemporaryColourTemperature(GearBroadcast()).frame)  # without EnableDeviceType(8)
    line.execute(general.EnableDeviceType(8).frame)
    line.execute(colour.Activate(GearBroadcast()).frame)
    assert line.gear[0].tc_mirek == 250  # untouched: the first command meant something else
    for transaction in frames.colour_temperature(GearBroadcast(), mirek):
        line.execute(transaction.frame)
    assert {g.tc_mirek for g in line.gear.values()} == {mirek}


def test_group_query_collides_and_yes_no_queries() -> None:
    line = _line()
    assert line.execute(frames.query_level(3).frame).kind is ReplyKind.VALUE
    assert line.execute(general.QueryActualLevel(GearGroup(0)).frame).kind is ReplyKind.FRAMING_ERROR
    assert line.execute(frames.query_lamp_failure(GearGroup(0)).frame).kind is ReplyKind.NONE
    line.gear[2].lamp_failure = True
    reply = line.execute(frames.query_lamp_failure(GearGroup(0)).frame)
    assert reply.kind is ReplyKind.VALUE and reply.yes
    line.gear[3].lamp_failure = True
    reply = line.execute(frames.query_lamp_failure(GearGroup(0)).frame)
    assert reply.kind is ReplyKind.FRAMING_ERROR and reply.yes


def test_fade_runs_linearly_in_arc_steps() -> None:
    line = _line()
    gear = line.gear[0]
    for transaction in frames.set_fade_time(GearShort(0), 4):  # 2.0 s
        line.execute(transaction.frame, 10.0)
        if transaction.send_twice:
            line.execute(transaction.frame, 10.01)
    assert gear.fade_code == 4
    line.execute(frames.arc_power(GearShort(0), 200).frame, 20.0)
    assert gear.level(20.0) == 0 and gear.level(21.0) == 100 and gear.level(22.5) == 200
    assert gear.status(21.0) & frames.STATUS_FADE_RUNNING


async def test_driver_frames_decode_with_python_dali_at_the_simulator() -> None:
    ctrl = controller(controller_data(lines=1, gear=8, groups=2, cct_line=1))
    async with running(ctrl) as (host, (driver,)):
        line = host.gateway(ctrl.id).lines[1]
        line.record = True
        states = {
            "l1g0": ChannelState(True, 60.0, Colour(cct_k=3000), fade_s=2.0),
            "l1g1": ChannelState(False, 0.0),
        }
        planned = [t for op in driver._compile(states)[0][1] for t in op.transactions]
        await driver.apply(states)
        expected = []
        for transaction in planned:
            expected += [str(transaction.command)] * (2 if transaction.send_twice else 1)
        assert line.decoded == expected
        assert any("EnableDeviceType(8)" in d for d in line.decoded)
        gear = line.gear
        assert {gear[a].tc_mirek for a in range(4)} == {kelvin_to_mirek(3000)}
        assert {gear[a].fade_code for a in range(4)} == {4} and {gear[a].target for a in range(4, 8)} == {0}
    await no_leftover_tasks()


def _blocking_session(port: int) -> dict[str, object]:
    out: dict[str, object] = {}
    with DaliServer("127.0.0.1", port, multiple_frames_per_connection=True) as bus:
        bus.send(general.DAPC(GearBroadcast(), 254))
        out["level"] = bus.send(general.QueryActualLevel(GearShort(5))).value
        bus.send(general.DTR0(7))
        bus.send(general.SetFadeTime(GearGroup(1)))  # send-twice: the client sends it twice
        out["fade"] = bus.send(general.QueryFadeTimeFadeRate(GearShort(12))).fade_time
        out["lamp_g0"] = bus.send(general.QueryLampFailure(GearGroup(0))).value
        out["lamp_g1"] = bus.send(general.QueryLampFailure(GearGroup(1))).value
        out["absent"] = bus.send(general.QueryControlGearPresent(GearShort(40))).value
        out["dtype"] = bus.send(general.QueryDeviceType(GearShort(0))).raw_value.as_integer
    return out


async def test_python_dali_daliserver_client_against_the_simulator() -> None:
    ctrl = controller(controller_data(gateway="daliserver", lines=1, gear=16, groups=2))
    host = DaliSimulatorHost([ctrl], any_port=True, timing=False)
    await host.start()
    try:
        host.inject(ctrl.id, Fault("lamp_failure", channel="l1g1", value=0.25))  # 2 of 8 gear: a collision
        port = host.endpoints()[ctrl.id]["ports"][1]
        out = await asyncio.to_thread(_blocking_session, port)
    finally:
        await host.stop()
    assert out == {"level": 254, "fade": 7, "lamp_g0": False, "lamp_g1": True, "absent": False, "dtype": 6}
    assert host.gateway(ctrl.id).lines[1].gear[9].fade_code == 7


async def test_bus_timing_per_line_and_lines_in_parallel() -> None:
    ctrl = controller(controller_data(lines=2, gear=4, groups=2))
    gw = SimGateway(ctrl, timing=True)
    dapc = frames.arc_power(GearBroadcast(), 254).frame
    query = frames.query_level(0).frame
    start = time.perf_counter()
    await asyncio.gather(*(gw.transact(1, dapc) for _ in range(10)), *(gw.transact(2, dapc) for _ in range(10)))
    both = time.perf_counter() - start
    assert 10 * FRAME_S <= both < 15 * FRAME_S  # two lines side by side (one after the other: 20 frames)
    start = time.perf_counter()
    for _ in range(4):
        await gw.transact(1, query)
    assert time.perf_counter() - start >= 4 * QUERY_S


@pytest.mark.timeout(30)
async def test_simulator_hosts_a_city_cheaply() -> None:
    ctrls = [controller(controller_data(f"gw{i:03d}", "lunatone-ws" if i % 2 else "daliserver")) for i in range(100)]
    started = time.perf_counter()
    host = DaliSimulatorHost(ctrls, any_port=True)
    await host.start()
    try:
        elapsed = time.perf_counter() - started
        gear = sum(len(line.gear) for gw in host.gateways.values() for line in gw.lines.values())
        assert gear == 100 * 2 * 64
        assert elapsed < 5.0, elapsed
    finally:
        await host.stop()
    await no_leftover_tasks()


async def test_write_times_keep_the_instants_outputs_changed() -> None:
    ctrl = controller(controller_data(lines=2, gear=4, groups=2))
    async with running(ctrl) as (host, (driver,)):
        started = time.monotonic()
        await driver.apply({"l1g0": ChannelState(True, 100.0), "l2g1": ChannelState(True, 100.0)})
        await driver.read(["l1g0", "l2g1"])  # queries are not writes
        times = host.write_times(ctrl.id)
        assert len(times) == 2 and all(started <= t <= time.monotonic() for t in times)


async def test_a_frame_goes_on_the_bus_when_it_arrived_or_when_the_line_is_free() -> None:
    ctrl = controller(controller_data(lines=2, gear=4, groups=2))
    gw = SimGateway(ctrl, timing=True)
    dapc = frames.arc_power(GearBroadcast(), 254).frame
    arrived = time.monotonic() - 0.005  # read by the gateway 5 ms ago; the simulator was busy since
    await gw.transact(1, dapc, arrived)
    assert gw.lines[1].write_times[-1] == arrived  # the line was idle: on the bus at once
    ended = time.monotonic()
    await gw.transact(1, dapc, arrived)  # arrived while the line still carried the first frame
    assert arrived + FRAME_S <= gw.lines[1].write_times[-1] <= ended
