"""The driver against both gateway transports and the simulator on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest
from dali.address import GearGroup
from dali.gear import general

from drivers.base import ControllerTimeout, ControllerUnreachable, Fault
from drivers.dali.commissioning import store_scenes
from drivers.dali.driver import DaliDriver
from drivers.dali.frames import ReplyKind, tx
from drivers.dali.levels import LEVEL_TOLERANCE, arc_to_percent, percent_to_arc
from drivers.dali.sim import FRAME_S, QUERY_S
from lightctl.model.values import OFF, ChannelState, FaultKind
from tests.test_dali_common import GATEWAYS, controller, controller_data, no_leftover_tasks, running

ON = ChannelState(True, 100.0)


def _all(ctrl, state):
    return {ch.id: state for ch in ctrl.channels}


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_switch_all_and_confirm(gateway: str) -> None:
    ctrl = controller(controller_data(gateway=gateway))
    async with running(ctrl) as (host, (driver,)):
        await driver.connect()
        result = await driver.apply(_all(ctrl, ON))
        # per line: fade time not yet known (DTR0 + SET FADE TIME twice) and one broadcast DAPC
        assert result.operations == 2 * 4 == host.request_count(ctrl.id)
        assert result.rejected == {}
        sim = host.gateway(ctrl.id)
        assert all(g.target == 254 for line in sim.lines.values() for g in line.gear.values())
        reading = await driver.read([ch.id for ch in ctrl.channels])
        assert host.request_count(ctrl.id) == 8 + len(ctrl.channels)  # one query per channel
        assert all(r.on and abs(r.level - 100) <= LEVEL_TOLERANCE for r in reading.channels.values())
        result = await driver.apply(_all(ctrl, OFF))
        assert result.operations == 2  # one broadcast per line now
        reading = await driver.read(["l2g3"])
        assert reading.channels["l2g3"].on is False and reading.channels["l2g3"].level == 0
        assert sim.power_w() == 0
        await driver.apply(_all(ctrl, ChannelState(True, 50.0)))
        assert sim.power_w() == pytest.approx(2 * 4 * 32 * 18.0 * arc_to_percent(229) / 100)
    await no_leftover_tasks()


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_compilation_uses_broadcast_groups_then_short_addresses(gateway: str) -> None:
    data = controller_data(gateway=gateway, lines=1, gear=64, groups=4)
    # a fifth group spanning two channels' gear, declared for compilation only
    data["settings"]["lines"][0]["groups"][15] = "0-31"
    ctrl = controller(data)
    async with running(ctrl) as (host, (driver,)):
        await driver.apply(_all(ctrl, OFF))  # learn fade times
        sim = host.gateway(ctrl.id)
        count = sim.frames

        async def frames_for(states):
            nonlocal count
            result = await driver.apply(states)
            sent, count = sim.frames - count, sim.frames
            assert result.operations == sent
            return sent

        mixed = {"l1g0": ON, "l1g1": ON, "l1g2": ChannelState(True, 50.0), "l1g3": OFF}
        assert await frames_for(mixed) == 3  # groups 15, 2 and 3 (as cheap as a broadcast and two groups)
        assert [op.kind for op in driver.plan(mixed)] == ["DAPC group"] * 3
        mostly_on = {"l1g0": ON, "l1g1": ON, "l1g2": ON, "l1g3": ChannelState(True, 50.0)}
        assert await frames_for(mostly_on) == 2  # broadcast 100 %, then group 3
        assert [op.kind for op in driver.plan(mostly_on)] == ["DAPC bc", "DAPC group"]
        assert await frames_for({"l1g2": ChannelState(True, 20.0)}) == 1
        assert await frames_for({"l1g0": ON, "l1g1": ON}) == 1  # group 15 covers both
        levels = {a: g.target for a, g in sim.lines[1].gear.items()}
        assert {levels[a] for a in range(32)} == {254} and {levels[a] for a in range(48, 64)} == {229}
    await no_leftover_tasks()


async def test_short_address_channels_and_no_overreach() -> None:
    data = controller_data(lines=1, gear=8, groups=1)
    data["settings"]["lines"][0]["groups"] = {0: "0-5"}
    lum = data["channels"][0]["luminaires"]
    data["channels"] += [{"id": "a6", "point": "1/a6", "luminaires": lum}, {"id": "a7", "point": "1/a7", "luminaires": lum}]
    ctrl = controller(data)
    async with running(ctrl) as (host, (driver,)):
        await driver.apply({"l1g0": OFF, "a6": OFF, "a7": OFF})
        sim = host.gateway(ctrl.id)
        before = sim.frames
        result = await driver.apply({"a6": ON, "a7": ChannelState(True, 30.0)})
        assert result.operations == sim.frames - before == 2
        assert [g.target for g in sim.lines[1].gear.values()] == [0] * 6 + [254, percent_to_arc(30.0)]


async def test_go_to_scene_when_the_gear_hold_the_scene() -> None:
    ctrl = controller(controller_data(lines=1, gear=64, groups=4, scenes={0: "night"}))
    night = {"l1g0": ON, "l1g1": ChannelState(True, 60.0), "l1g2": ChannelState(True, 30.0), "l1g3": OFF}
    async with running(ctrl) as (host, (driver,)):
        await driver.apply(_all(ctrl, OFF))
        sent = await store_scenes(driver, {0: night})
        sim = host.gateway(ctrl.id)
        assert sim.lines[1].gear[20].scenes[0] == percent_to_arc(60.0) and sim.lines[1].gear[63].scenes[0] == 0
        assert sent <= 4 * 3  # one DTR0 + SET SCENE (twice) per distinct level, broadcast first
        before = sim.frames
        result = await driver.apply(night)
        assert result.operations == sim.frames - before == 1
        assert [op.kind for op in driver.plan(night)] == ["GoToScene broadcast"]
        reading = await driver.read(list(night))
        assert abs(reading.channels["l1g1"].level - 60) <= LEVEL_TOLERANCE
        # a driver that did not store the scenes learns them from the gear, a few per poll
        fresh = DaliDriver(driver.controller)
        try:
            polls = 0
            while "GoToScene broadcast" not in [op.kind for op in fresh.plan(night)]:
                await fresh.sweep_once()
                polls += 1
                assert polls <= 64 // 8
            # it does not know the gear's fade time yet: one broadcast SET FADE TIME first
            assert [op.kind for op in fresh.plan(night)] == ["SetFadeTime broadcast", "GoToScene broadcast"]
        finally:
            await fresh.close()
        # a gear replaced without the scene: GoToScene does not reach it, so it gets its own frame
        sim.lines[1].gear[5].scenes[0] = 255
        sim.lines[1].gear[6].scenes[0] = 100
        await driver.read_scenes(1)
        assert [op.kind for op in driver.plan(night)] != ["GoToScene broadcast"]
        await driver.apply(_all(ctrl, OFF))
        await driver.apply(night)
        assert {sim.lines[1].gear[a].target for a in range(16)} == {254}


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_frame_from_another_master_mid_transaction(gateway: str) -> None:
    ctrl = controller(controller_data(gateway=gateway, lines=1, gear=8, groups=2))
    async with running(ctrl) as (host, (driver,)):
        await driver.apply(_all(ctrl, ChannelState(True, 40.0)))
        host.inject(ctrl.id, Fault("foreign_frame", value=2))
        reading = await driver.read(["l1g1"])
        assert abs(reading.channels["l1g1"].level - 40) <= LEVEL_TOLERANCE
        assert driver.foreign_frames() == 2
        reading = await driver.read(["l1g0"])  # the stream is still in step
        assert abs(reading.channels["l1g0"].level - 40) <= LEVEL_TOLERANCE
    await no_leftover_tasks()


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_framing_error_on_a_group_query_and_lamp_failure_by_sweep(gateway: str) -> None:
    ctrl = controller(controller_data(gateway=gateway, lines=2, gear=16, groups=2))
    async with running(ctrl) as (host, (driver,)):
        await driver.apply(_all(ctrl, ON))
        host.inject(ctrl.id, Fault("lamp_failure", channel="l2g1", value=0.25))  # 2 of 8 gear
        reply = await driver.transact(2, tx(general.QueryLampFailure(GearGroup(1))))
        assert reply.kind is ReplyKind.FRAMING_ERROR and reply.yes
        reply = await driver.transact(2, tx(general.QueryLampFailure(GearGroup(0))))
        assert reply.kind is ReplyKind.NONE
        reading = await driver.read()  # the background sweep's first pass: asks each channel
        assert reading.channels["l2g1"].faults == {FaultKind.LAMP_FAILURE}
        reading = await driver.sweep_once()  # a later pass narrows it down gear by gear
        assert reading.channels["l2g1"].faults == {FaultKind.LAMP_FAILURE}
        assert reading.measurements["l2g1.lamp_failures"] == 2
        assert FaultKind.LAMP_FAILURE in reading.faults
        assert all(not r.faults for ch, r in reading.channels.items() if ch != "l2g1")
        assert all(r.on and r.level == pytest.approx(100) for r in reading.channels.values())
        host.inject(ctrl.id, Fault("gear_missing", channel="l1g0", value=0.125))
        reading = await driver.sweep_once()
        assert reading.channels["l1g0"].faults == {FaultKind.GEAR_FAILURE}
        assert reading.measurements["l1g0.gear_missing"] == 1
    await no_leftover_tasks()


async def test_colour_temperature_read_by_the_sweep() -> None:
    from lightctl.model.values import Colour

    ctrl = controller(controller_data(lines=1, gear=8, groups=2, cct_line=1))
    async with running(ctrl) as (_host, (driver,)):
        await driver.apply({"l1g0": ChannelState(True, 80.0, Colour(cct_k=2700))})
        reading = await driver.read()
        assert reading.channels["l1g0"].colour == Colour(cct_k=2703)  # 370 mirek
        before = sum(driver.transport.frames_sent.values())
        await driver.apply({"l1g0": ChannelState(True, 70.0, Colour(cct_k=2700))})
        assert sum(driver.transport.frames_sent.values()) - before == 1  # colour already held


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_offline_slow_and_reconnect(gateway: str) -> None:
    ctrl = controller(controller_data(gateway=gateway, lines=1, gear=4, groups=1, timeout_s=0.3))
    async with running(ctrl) as (host, (driver,)):
        await driver.connect()
        host.inject(ctrl.id, Fault("slow", value=0.6))
        with pytest.raises(ControllerTimeout) as info:
            await driver.apply(_all(ctrl, ON))
        assert info.value.controller_id == ctrl.id and "line 1" in info.value.detail
        host.clear(ctrl.id)
        await asyncio.sleep(0.4)  # let the late reply arrive and be discarded
        await driver.apply(_all(ctrl, ON))
        reading = await driver.read(["l1g0"])
        assert reading.channels["l1g0"].on
        host.inject(ctrl.id, Fault("offline"))
        await asyncio.sleep(0.05)
        with pytest.raises((ControllerUnreachable, ControllerTimeout)):
            await driver.apply(_all(ctrl, OFF))
        with pytest.raises((ControllerUnreachable, ControllerTimeout)):
            await driver.apply(_all(ctrl, OFF))
        host.clear(ctrl.id)
        result = await driver.apply(_all(ctrl, OFF))  # the next call reconnects
        assert result.operations >= 1
        assert host.gateway(ctrl.id).lines[1].gear[0].target == 0
    await no_leftover_tasks()


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_commands_go_before_the_sweep(gateway: str) -> None:
    ctrl = controller(controller_data(gateway=gateway, lines=1, gear=32, groups=2))
    async with running(ctrl, timing=True) as (_host, (driver,)):
        await driver.apply(_all(ctrl, OFF))
        sweep = asyncio.create_task(driver.sweep_once())
        await asyncio.sleep(0.3)  # the sweep is busy querying gear one by one
        started = time.perf_counter()
        await driver.apply(_all(ctrl, ON))
        reading = await driver.read(["l1g0", "l1g1"])
        elapsed = time.perf_counter() - started
        assert not sweep.done()
        # at most one sweep query in flight, then a broadcast and two confirmation queries (0.17 s);
        # behind the sweep it would be over 0.7 s more
        assert elapsed < QUERY_S + FRAME_S + 2 * QUERY_S + 0.25, elapsed
        assert all(r.on for r in reading.channels.values())
        await sweep
    await no_leftover_tasks()


async def test_one_line_down_rejects_its_channels_and_applies_the_rest() -> None:
    ctrl = controller(controller_data(gateway="daliserver", lines=2, gear=8, groups=2, timeout_s=0.3))
    async with running(ctrl) as (host, (driver,)):
        await driver.apply(_all(ctrl, OFF))
        await host._daliserver[ctrl.id][1].stop()  # line 2's daliserver process is gone
        await driver.close()
        result = await driver.apply(_all(ctrl, ON))
        assert set(result.rejected) == {"l2g0", "l2g1"}
        assert all("line 2: ControllerUnreachable" in why for why in result.rejected.values())
        assert {g.target for g in host.gateway(ctrl.id).lines[1].gear.values()} == {254}
        assert {g.target for g in host.gateway(ctrl.id).lines[2].gear.values()} == {0}


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_full_poll_is_the_background_sweep(gateway: str) -> None:
    data = controller_data(gateway=gateway, lines=2, gear=8, groups=2, timeout_s=0.5)
    data["poll_s"] = 0.3  # first pass: 2 channels x 3 queries x 47 ms, within 1.5 x timeout_s
    data["settings"]["sweep_budget"] = 4
    ctrl = controller(data)
    async with running(ctrl, timing=True) as (host, (driver,)):
        await driver.apply(_all(ctrl, ON))
        first = await driver.read()  # starts the sweep, waits for its first pass
        assert all(r.on for r in first.channels.values())
        started = time.perf_counter()
        again = await driver.read()  # the last pass, at once: a poll never holds the bus
        assert time.perf_counter() - started < 0.02 and again is first
        host.inject(ctrl.id, Fault("lamp_failure", channel="l1g1", value=0.5))
        await asyncio.sleep(0.9)  # a later pass of the background sweep sees it
        reading = await driver.read()
        assert reading.at > first.at and reading.channels["l1g1"].faults == {FaultKind.LAMP_FAILURE}
        host.inject(ctrl.id, Fault("offline"))
        await asyncio.sleep(0.9)
        with pytest.raises((ControllerUnreachable, ControllerTimeout)):
            await driver.read()
        host.clear(ctrl.id)
        await asyncio.sleep(0.9)
        assert (await driver.read()).channels["l1g0"].on
        await driver.close()  # stops the sweep
    await no_leftover_tasks()


async def test_websocket_gateway_with_fewer_lines_than_configured() -> None:
    from drivers.base import RequestRejected

    data = controller_data(lines=2, gear=4, groups=1)
    data["profile"] = "lunatone-dali2-iot"  # one line: the simulated gateway says so in its greeting
    ctrl = controller(data)
    async with running(ctrl) as (_host, (driver,)):
        with pytest.raises(RequestRejected, match="has 1 line"):
            await driver.connect()


async def test_first_command_sets_the_fade_time_once_per_line() -> None:
    ctrl = controller(controller_data(lines=1, gear=64, groups=4))
    async with running(ctrl) as (host, (driver,)):
        mixed = {"l1g0": ON, "l1g1": ON, "l1g2": ON, "l1g3": ChannelState(True, 50.0)}
        kinds = [[str(t.command).split("(")[0] for t in op.transactions] for op in driver._compile(mixed)[0][1]]
        # the broadcast sets the fade time of every gear; the group after it needs no set-up of its own
        assert kinds == [["DTR0", "SetFadeTime", "ArcPower"], ["ArcPower"]]
        result = await driver.apply(mixed)
        assert result.operations == host.request_count(ctrl.id) == 5


async def test_planned_batches_are_sent_without_compiling_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A show plans its cues before the first beat: at the beat ``apply`` only sends, for as long
    as what the driver knows of the gear is what the plan was compiled with."""
    import drivers.dali.driver as dali_driver

    ctrl = controller(controller_data(lines=2, gear=64, groups=4))
    compiled: list[int] = []
    real = dali_driver.compile_line

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        compiled.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dali_driver, "compile_line", counting)
    async with running(ctrl) as (host, (driver,)):
        await driver.connect()
        await driver.apply(_all(ctrl, OFF))  # fade times learned
        dim, bright = _all(ctrl, ChannelState(True, 20.0)), _all(ctrl, ChannelState(True, 80.0))
        driver.plan(dim), driver.plan(bright)
        compiled.clear()
        sim = host.gateway(ctrl.id)
        before = sim.frames
        assert (await driver.apply(dim)).operations == 2  # one broadcast per line
        assert (await driver.apply(bright)).operations == 2
        assert compiled == [] and sim.frames - before == 4
        # a warm start on the live session keeps the knowledge, and with it the compiled cues
        await driver.connect()
        assert (await driver.apply(dim)).operations == 2 and compiled == []
        # a fade time the gear do not hold yet: compiled again, set-up frames included
        fading = _all(ctrl, ChannelState(True, 20.0, fade_s=2.0))
        assert (await driver.apply(fading)).operations == 2 * 4
        assert compiled != []
        # the gear now hold the new fade time: the old plans are stale and are not reused
        compiled.clear()
        assert (await driver.apply(_all(ctrl, ChannelState(True, 80.0, fade_s=2.0)))).operations == 2
        assert (await driver.apply(bright)).operations == 2 * 4  # back to fade 0: set-up again
        assert len(compiled) == 2 * 2  # two lines, two batches
        # a session opened anew forgets the gear (another master may have been at them)
        await driver.close()
        await driver.connect()
        assert (await driver.apply(bright)).operations == 2 * 4
    await no_leftover_tasks()
