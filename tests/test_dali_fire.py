"""A show's beat over DALI: ``prepare()`` before the beat, ``fire()`` puts every line's first frame
on the wire before it returns, the task it returns finishes the batch as ``apply()`` would."""

from __future__ import annotations

import asyncio

import pytest

from drivers.base import OFF, ChannelState, ControllerTimeout, ControllerUnreachable, Fault
from drivers.dali.driver import DaliDriver
from drivers.dali.frames import query_level
from drivers.dali.levels import LEVEL_TOLERANCE, percent_to_arc
from drivers.dali.sim import FRAME_S
from drivers.dali.transport import HeldLineTransport
from tests.test_dali_common import controller, controller_data, no_leftover_tasks, running

HALF = ChannelState(True, 50.0)
DIM = ChannelState(True, 20.0, fade_s=0.7)
FADE_S = 0.71  # fade code 1


def _all(driver: DaliDriver, state: ChannelState) -> dict[str, ChannelState]:
    return {ch.id: state for ch in driver.controller.channels}


def _frames_sent(driver: DaliDriver) -> int:
    return sum(driver.transport.frames_sent.values())


def assert_lines_free(driver: DaliDriver) -> None:
    """Every line's command turn and transport turn can be taken (and are given back)."""
    transport = driver.transport
    assert isinstance(transport, HeldLineTransport)
    for number, arbiter in driver.arbiters.items():
        assert arbiter.idle, f"line {number}: command turn held"
        assert arbiter.try_command()
        arbiter.end_command()
        if transport.is_open():
            assert transport.try_hold(number), f"line {number}: transport turn held"
            transport.end_turn(number)


def _daliserver(cid: str, *, lines: int = 2, timeout_s: float = 1.0) -> dict:  # type: ignore[type-arg]
    return controller_data(cid, "daliserver", lines=lines, gear=64, groups=4, timeout_s=timeout_s)


@pytest.mark.parametrize(
    "batch_of",
    [
        pytest.param(lambda d: _all(d, DIM), id="broadcast"),
        pytest.param(lambda d: {"l1g1": DIM, "l1g2": HALF, "l2g3": OFF}, id="groups"),
    ],
)
async def test_fire_sends_what_apply_sends(batch_of) -> None:  # type: ignore[no-untyped-def]
    """Two identical gateways, one fired, one applied: the same frames, in the same order, the
    same result, the gear at the same levels; the first frame of each line left before fire
    returned and both lines' were on the bus before the first reply came back."""
    fired_ctrl, applied_ctrl = controller(_daliserver("fired")), controller(_daliserver("applied"))
    async with running(fired_ctrl, applied_ctrl, timing=True) as (host, (fired, applied)):
        for driver in (fired, applied):
            await driver.connect()
            for line in host.gateway(driver.controller_id).lines.values():
                line.record = True
        batch = batch_of(fired)
        sim = host.gateway("fired")
        prepared = fired.prepare(batch)
        assert prepared is not None
        before = _frames_sent(fired)
        future = prepared.fire()
        assert future is not None
        assert _frames_sent(fired) - before == 2  # one per line, written before fire returned
        await asyncio.sleep(FRAME_S / 3)  # the gateway has them; neither line's reply is back yet
        assert sim.frames_per_line() == {1: 1, 2: 1}
        result = await future
        expected = await applied.apply(batch)
        assert result == expected and result.operations == sim.frames > 2
        assert result.operations == _frames_sent(fired) - before
        other = host.gateway("applied")
        assert [line.decoded for line in sim.lines.values()] == [line.decoded for line in other.lines.values()]
        assert [[g.target for g in line.gear.values()] for line in sim.lines.values()] == [
            [g.target for g in line.gear.values()] for line in other.lines.values()
        ]
        await asyncio.sleep(FADE_S)
        reading = await fired.read(list(batch))  # the gear answer with the levels asked for
        for channel, state in batch.items():
            assert abs((reading.channels[channel].level or 0) - state.output) <= LEVEL_TOLERANCE
        assert_lines_free(fired)
        # what the gear now hold was learned as apply learns it: the same batch again is one DAPC a frame
        again = fired.prepare(batch)
        assert again is not None
        future = again.fire()
        assert future is not None
        assert (await future).operations == (await applied.apply(batch)).operations < result.operations
    await no_leftover_tasks()


async def test_fire_sends_nothing_when_a_line_is_busy() -> None:
    ctrl = controller(_daliserver("gw"))
    async with running(ctrl, timing=True) as (host, (driver,)):
        await driver.apply(_all(driver, OFF))
        batch = _all(driver, HALF)
        sim = host.gateway("gw")

        # a sweep query is on the wire on every line
        sweep = asyncio.create_task(driver.sweep_once(gear_by_gear=False))
        await asyncio.sleep(0.01)
        prepared = driver.prepare(batch)
        assert prepared is not None
        before, at_sim = _frames_sent(driver), sim.frames
        assert prepared.fire() is None
        assert _frames_sent(driver) == before
        await sweep
        assert sim.frames - at_sim == _frames_sent(driver) - before  # the sweep's queries only
        assert {g.target for line in sim.lines.values() for g in line.gear.values()} == {0}
        assert_lines_free(driver)

        # a command holds line 2 only: line 1, taken first, is given back untouched
        command = asyncio.create_task(driver.transact(2, query_level(0)))
        await asyncio.sleep(0.01)
        before = _frames_sent(driver)
        assert prepared.fire() is None
        assert _frames_sent(driver) == before
        assert driver.arbiters[1].idle and not driver.arbiters[2].idle
        await command
        assert_lines_free(driver)

        # free again: the same prepared send fires
        future = prepared.fire()
        assert future is not None
        assert (await future).operations == 2
        assert {g.target for line in sim.lines.values() for g in line.gear.values()} == {percent_to_arc(50.0)}
    await no_leftover_tasks()


async def test_stale_preparations_are_not_fired() -> None:
    ctrl = controller(_daliserver("gw"))
    async with running(ctrl) as (host, (driver,)):
        assert driver.prepare(_all(driver, HALF)) is None  # no session yet: apply connects
        await driver.apply(_all(driver, OFF))
        prepared = driver.prepare(_all(driver, HALF))
        assert prepared is not None
        driver.knowledge[2].forget()  # the gear may have changed: fade times set up anew
        assert prepared.fire() is None
        prepared = driver.prepare(_all(driver, HALF))
        assert prepared is not None
        await host._daliserver["gw"][0].stop()  # line 1's gateway goes away: its session ends
        await asyncio.sleep(0.05)
        before = _frames_sent(driver)
        assert prepared.fire() is None and _frames_sent(driver) == before
        assert driver.prepare(_all(driver, HALF)) is None
        assert_lines_free(driver)
        assert driver.prepare({"nowhere": HALF}) is None  # nothing to send
    await no_leftover_tasks()


async def test_websocket_gateway_is_not_prepared() -> None:
    ctrl = controller(controller_data("ws", "lunatone-ws", lines=1, gear=8, groups=2))
    async with running(ctrl) as (_host, (driver,)):
        await driver.connect()
        assert driver.prepare(_all(driver, HALF)) is None
    await no_leftover_tasks()


@pytest.mark.parametrize("failure", ["gateway_stopped", "slow"])
async def test_lines_are_given_back_when_the_fired_send_fails(failure: str) -> None:
    ctrl = controller(_daliserver("gw", lines=1, timeout_s=0.3))
    async with running(ctrl) as (host, (driver,)):
        await driver.apply(_all(driver, OFF))
        prepared = driver.prepare(_all(driver, DIM))
        assert prepared is not None
        if failure == "slow":
            host.inject("gw", Fault("slow", value=0.6))
        future = prepared.fire()
        assert future is not None
        if failure == "gateway_stopped":
            await host._daliserver["gw"][0].stop()
        with pytest.raises(ControllerTimeout if failure == "slow" else ControllerUnreachable) as info:
            await future
        assert info.value.controller_id == "gw" and "line 1" in info.value.detail
        assert_lines_free(driver)
        assert not driver.transport.is_open()
        assert driver.knowledge[1].fade == {}  # forgotten: the next command sets the fade time again
    await no_leftover_tasks()


@pytest.mark.parametrize("after_s", [0.0, 0.04])
async def test_lines_are_given_back_when_the_fired_send_is_cancelled(after_s: float) -> None:
    """Cancelled before its task first ran, or between two frames: the turns are given back, the
    session with a reply still due is dropped, and the next command is not thrown off by that
    reply."""
    ctrl = controller(_daliserver("gw"))
    async with running(ctrl, timing=True) as (host, (driver,)):
        await driver.apply(_all(driver, OFF))
        prepared = driver.prepare(_all(driver, DIM))
        assert prepared is not None
        future = prepared.fire()
        assert future is not None
        if after_s:
            await asyncio.sleep(after_s)
        future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await future
        assert_lines_free(driver)
        assert not driver.transport.is_open()
        result = await driver.apply(_all(driver, HALF))  # reconnects; sets the fade time again
        assert result.operations == 2 * 4 and result.rejected == {}
        reading = await driver.read(["l1g0", "l2g3"])
        assert all(abs((r.level or 0) - 50.0) <= LEVEL_TOLERANCE for r in reading.channels.values())
        assert {g.target for line in host.gateway("gw").lines.values() for g in line.gear.values()} == {
            percent_to_arc(50.0)
        }
    await no_leftover_tasks()
