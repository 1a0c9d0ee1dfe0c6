"""A show's beat over DALI: ``prepare()`` before the beat, ``fire()`` puts every line's first frame
on the wire before it returns, the task it returns finishes the batch as ``apply()`` would."""

from __future__ import annotations

import asyncio
import time

import pytest

from drivers.base import ControllerTimeout, ControllerUnreachable, Fault
from drivers.dali.driver import DaliDriver
from drivers.dali.frames import query_level
from drivers.dali.levels import LEVEL_TOLERANCE, percent_to_arc
from drivers.dali.sim import FRAME_S
from drivers.dali.transport import HeldLineTransport
from lightctl.model.values import OFF, ChannelState
from tests.test_dali_common import GATEWAYS, controller, controller_data, no_leftover_tasks, running

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


def _gateway(cid: str, gateway: str, *, lines: int = 2, timeout_s: float = 1.0) -> dict:  # type: ignore[type-arg]
    return controller_data(cid, gateway, lines=lines, gear=64, groups=4, timeout_s=timeout_s)


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.parametrize(
    "batch_of",
    [
        pytest.param(lambda d: _all(d, DIM), id="broadcast"),
        pytest.param(lambda d: {"l1g1": DIM, "l1g2": HALF, "l2g3": OFF}, id="groups"),
    ],
)
async def test_fire_sends_what_apply_sends(batch_of, gateway: str) -> None:  # type: ignore[no-untyped-def]
    """Two identical gateways, one fired, one applied: the same frames, in the same order, the
    same result, the gear at the same levels; both lines' first frames were on the bus before
    the first of them was over."""
    fired_ctrl, applied_ctrl = controller(_gateway("fired", gateway)), controller(_gateway("applied", gateway))
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
        if gateway == "daliserver":  # counted as written (the WebSocket's when the gateway says sent)
            assert _frames_sent(fired) - before == 2
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


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_fire_sends_nothing_when_a_line_is_busy(gateway: str) -> None:
    ctrl = controller(_gateway("gw", gateway))
    async with running(ctrl, timing=True) as (host, (driver,)):
        await driver.apply(_all(driver, OFF))
        batch = _all(driver, HALF)
        sim = host.gateway("gw")

        # a sweep query is on the wire on every line
        at_sim = sim.frames
        sweep = asyncio.create_task(driver.sweep_once(gear_by_gear=False))
        await asyncio.sleep(0.01)
        prepared = driver.prepare(batch)
        assert prepared is not None
        assert prepared.fire() is None
        await sweep
        assert sim.frames - at_sim == 2 * 4 * 3  # the sweep's queries only: 3 per channel
        assert {g.target for line in sim.lines.values() for g in line.gear.values()} == {0}
        assert_lines_free(driver)

        # a command holds line 2 only: line 1, taken first, is given back untouched
        command = asyncio.create_task(driver.transact(2, query_level(0)))
        await asyncio.sleep(0.01)
        at_sim = sim.frames
        assert prepared.fire() is None
        assert driver.arbiters[1].idle and not driver.arbiters[2].idle
        await command
        assert sim.frames - at_sim == 0  # the command's query was on the wire already
        assert_lines_free(driver)

        # free again: the same prepared send fires
        future = prepared.fire()
        assert future is not None
        assert (await future).operations == 2
        assert {g.target for line in sim.lines.values() for g in line.gear.values()} == {percent_to_arc(50.0)}
    await no_leftover_tasks()


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_stale_preparations_are_not_fired(gateway: str) -> None:
    ctrl = controller(_gateway("gw", gateway))
    async with running(ctrl) as (host, (driver,)):
        assert driver.prepare(_all(driver, HALF)) is None  # no session yet: apply connects
        await driver.apply(_all(driver, OFF))
        prepared = driver.prepare(_all(driver, HALF))
        assert prepared is not None
        driver.knowledge[2].forget()  # the gear may have changed: fade times set up anew
        assert prepared.fire() is None
        prepared = driver.prepare(_all(driver, HALF))
        assert prepared is not None
        host.inject("gw", Fault("offline"))  # the gateway ends the session
        await asyncio.sleep(0.1)
        before = _frames_sent(driver)
        assert prepared.fire() is None and _frames_sent(driver) == before
        assert driver.prepare(_all(driver, HALF)) is None
        assert_lines_free(driver)
        assert driver.prepare({"nowhere": HALF}) is None  # nothing to send
    await no_leftover_tasks()


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.parametrize("failure", ["offline", "slow"])
async def test_lines_are_given_back_when_the_fired_send_fails(failure: str, gateway: str) -> None:
    ctrl = controller(_gateway("gw", gateway, lines=1, timeout_s=0.3))
    async with running(ctrl) as (host, (driver,)):
        await driver.apply(_all(driver, OFF))
        prepared = driver.prepare(_all(driver, DIM))
        assert prepared is not None
        if failure == "slow":
            host.inject("gw", Fault("slow", value=0.6))
        future = prepared.fire()
        assert future is not None
        if failure == "offline":
            host.inject("gw", Fault("offline"))
        with pytest.raises(ControllerTimeout if failure == "slow" else ControllerUnreachable) as info:
            await future
        assert info.value.controller_id == "gw" and "line 1" in info.value.detail
        assert_lines_free(driver)
        assert not driver.transport.is_open()
        assert driver.knowledge[1].fade == {}  # forgotten: the next command sets the fade time again
    await no_leftover_tasks()


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.parametrize("after_s", [0.0, 0.04])
async def test_lines_are_given_back_when_the_fired_send_is_cancelled(after_s: float, gateway: str) -> None:
    """Cancelled before its task first ran (so what reached the gateway was written by fire
    itself), or between two frames: the turns are given back, the session with a reply still due
    is dropped, and the next command is not thrown off by that reply."""
    ctrl = controller(_gateway("gw", gateway))
    async with running(ctrl, timing=True) as (host, (driver,)):
        await driver.apply(_all(driver, OFF))
        prepared = driver.prepare(_all(driver, DIM))
        assert prepared is not None
        sim = host.gateway("gw")
        for line in sim.lines.values():
            line.frames = 0
        future = prepared.fire()
        assert future is not None
        if after_s:
            await asyncio.sleep(after_s)
        future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await future
        assert_lines_free(driver)
        assert not driver.transport.is_open()
        if not after_s:
            await asyncio.sleep(FRAME_S)
            assert sim.frames_per_line() == {1: 1, 2: 1}
        result = await driver.apply(_all(driver, HALF))  # reconnects; sets the fade time again
        assert result.operations == 2 * 4 and result.rejected == {}
        reading = await driver.read(["l1g0", "l2g3"])
        assert all(abs((r.level or 0) - 50.0) <= LEVEL_TOLERANCE for r in reading.channels.values())
        assert {g.target for line in sim.lines.values() for g in line.gear.values()} == {
            percent_to_arc(50.0)
        }
    await no_leftover_tasks()


async def test_a_show_fires_dali_gateways_at_its_beats(make_farm, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Through the daemon: every cue of a show is fired at its beat on both kinds of gateway
    (none falls back to apply), every cue reaches the gear, and the last is held and confirmed."""
    from lightctl.runtime.daemon import Daemon
    from tests.conftest import installation_data
    from tests.test_dali_engine import _dali
    from tests.test_shows import wait_for_show

    fired: list[str] = []
    real_prepare = DaliDriver.prepare

    class Counted:
        def __init__(self, driver: DaliDriver, prepared) -> None:  # type: ignore[no-untyped-def]
            self.driver, self.prepared = driver, prepared

        def fire(self):  # type: ignore[no-untyped-def]
            future = self.prepared.fire()
            if future is not None:
                fired.append(self.driver.controller_id)
            return future

    def prepare(self: DaliDriver, states):  # type: ignore[no-untyped-def]
        prepared = real_prepare(self, states)
        return None if prepared is None else Counted(self, prepared)

    monkeypatch.setattr(DaliDriver, "prepare", prepare)
    gap = 0.5
    data = installation_data([_dali("dws", "lunatone-ws", 2, 40001), _dali("dsrv", "daliserver", 2, 41000)])
    levels = [20, 60, 100]
    data["shows"] = [
        {
            "id": "beat", "target": "*", "duration_s": len(levels) * gap, "loops": 1, "end": "hold",
            "cues": [{"at_s": i * gap, "rules": [{"target": "*", "level": level}]} for i, level in enumerate(levels)],
        }
    ]
    farm, config = await make_farm(data)
    daemon = Daemon(config, database=tmp_path / "show.db")
    await daemon.start()
    try:
        await daemon.engine.connect_all()
        since = time.monotonic()
        run = await daemon.shows.start("beat", user="test")
        await wait_for_show(daemon)
        assert run.status == "holding"
        assert sorted((r.cue, r.controller_id, r.status) for r in run.records) == [
            (cue, cid, "sent") for cue in range(len(levels)) for cid in ("dsrv", "dws")
        ]
        assert sorted(fired) == ["dsrv"] * len(levels) + ["dws"] * len(levels)
        times = await farm.write_times(since)
        for cue in range(len(levels)):
            beat = run.start_monotonic + cue * gap
            for cid in ("dsrv", "dws"):  # one broadcast per line, inside its beat
                assert len([t for t in times[cid] if beat - 0.005 <= t < beat + gap]) == 2, (cue, cid)
        for cid in ("dsrv", "dws"):  # the gear answer with the last cue's level
            reading = await daemon.engine.runtimes[cid].driver.read([f"l{n}g{g}" for n in (1, 2) for g in range(4)])
            assert all(abs((r.level or 0) - levels[-1]) <= LEVEL_TOLERANCE for r in reading.channels.values()), reading
    finally:
        await daemon.stop()
