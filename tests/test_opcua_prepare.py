"""OPC UA ``prepare()``/``fire()`` for a show's beat, against the simulated PLC on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opcua_helpers import bridge_controller, plc_driver, simulated_plc

from drivers.base import ControllerTimeout, Fault, RequestRejected
from drivers.opcua.driver import OpcUaDriver, PreparedRequest
from drivers.opcua.sim import OpcUaSimulator
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ApplyResult, ChannelState, Colour
from lightctl.runtime.daemon import Daemon
from tests.conftest import installation_data

BATCH = {
    "deck": ChannelState(True, 55.0, Colour(rgb=(255, 40, 0))),
    "cables": ChannelState(True, 35.0),
    "piers": ChannelState(True, 80.0, Colour(cct_k=4000)),
}


@pytest.fixture
async def plc() -> AsyncIterator[tuple[OpcUaSimulator, ControllerConfig]]:
    async with simulated_plc(bridge_controller(timeout_s=0.5)) as running:
        yield running


@pytest.fixture
async def driver(plc: tuple[OpcUaSimulator, ControllerConfig]) -> AsyncIterator[OpcUaDriver]:
    async with plc_driver(plc[1]) as d:
        yield d


async def fire(driver: OpcUaDriver, batch: dict[str, ChannelState]) -> ApplyResult:
    prepared = driver.prepare(batch)
    assert prepared is not None
    future = prepared.fire()
    assert future is not None
    return await future


async def test_fire_sends_the_prepared_batch_as_one_write(plc, driver) -> None:
    sim, ctrl = plc
    await driver.connect()
    writes = sim.service_count(ctrl.id, "Write")
    prepared = driver.prepare(BATCH)
    assert prepared is not None
    future = prepared.fire()
    assert future is not None
    assert await future == ApplyResult(operations=1)
    assert sim.service_count(ctrl.id, "Write") == writes + 1
    reading = await driver.read(list(BATCH))
    assert {cid: (r.on, r.level) for cid, r in reading.channels.items()} == {
        "deck": (True, 55.0), "cables": (True, 35.0), "piers": (True, 80.0)
    }
    full = await driver.read()
    assert full.channels["deck"].colour == Colour(rgb=(255, 40, 0))
    assert full.channels["piers"].colour == Colour(cct_k=4000)
    for level in (10.0, 90.0, 40.0):  # a cue after the other, one Write each
        assert await fire(driver, {"towers": ChannelState(True, level)}) == ApplyResult(operations=1)
    assert sim.service_count(ctrl.id, "Write") == writes + 4
    assert (await driver.read(["towers"])).channels["towers"].level == 40.0


async def test_a_request_sent_in_between_does_not_stop_the_fire(plc, driver) -> None:
    """asyncua's Publish or watchdog, or a read-back, between prepare and the beat: the message
    is built at the fire, with the channel's request id and sequence number of that moment."""
    sim, ctrl = plc
    await driver.connect()
    writes = sim.service_count(ctrl.id, "Write")
    prepared = driver.prepare({"deck": ChannelState(True, 25.0)})
    assert prepared is not None
    await driver.read(["deck"])
    future = prepared.fire()
    assert future is not None and await future == ApplyResult(operations=1)
    # two batches of one driver prepared for the same beat
    first, second = driver.prepare({"deck": ChannelState(True, 30.0)}), driver.prepare({"cables": ChannelState(True, 60.0)})
    assert first is not None and second is not None
    futures = [first.fire(), second.fire()]
    assert all(f is not None for f in futures)
    assert await asyncio.gather(*futures) == [ApplyResult(operations=1)] * 2  # type: ignore[arg-type]
    assert sim.service_count(ctrl.id, "Write") == writes + 3
    reading = await driver.read(["deck", "cables"])
    assert {cid: r.level for cid, r in reading.channels.items()} == {"deck": 30.0, "cables": 60.0}


async def test_refused_nodes_give_what_apply_gives(plc, driver) -> None:
    sim, ctrl = plc
    await driver.connect()
    sim.inject(ctrl.id, Fault("zone_failure", channel="cables"))
    await sim.settle()
    batch = {"deck": ChannelState(True, 20.0), "cables": ChannelState(True, 20.0)}
    fired = await fire(driver, batch)
    applied = await driver.apply(batch)
    assert fired == applied and set(fired.rejected) == {"cables"}
    assert "BridgeLighting/Zones/cables/Enable: BadDeviceFailure" in fired.rejected["cables"]
    # every channel refused: the same typed error as apply's
    with pytest.raises(RequestRejected) as by_apply:
        await driver.apply({"cables": ChannelState(True, 20.0)})
    with pytest.raises(RequestRejected) as by_fire:
        await fire(driver, {"cables": ChannelState(True, 20.0)})
    assert str(by_fire.value) == str(by_apply.value)
    assert type(by_fire.value) is type(by_apply.value)
    assert str(by_fire.value).startswith("plc-test: write BridgeLighting/Zones/cables/")
    assert sim.service_count(ctrl.id, "Write") == 4


async def test_recall_scene_is_one_call_at_fire(plc, driver) -> None:
    sim, ctrl = plc
    await driver.connect()
    writes = sim.service_count(ctrl.id, "Write")
    all_at = {ch.id: ChannelState(True, 70.0) for ch in ctrl.channels}
    assert await fire(driver, all_at) == ApplyResult(operations=1)
    assert sim.service_count(ctrl.id, "Call") == 1 and sim.service_count(ctrl.id, "Write") == writes
    reading = await driver.read()
    assert all(r.level == 70.0 and r.on for r in reading.channels.values())
    assert reading.measurements["scene"] == 2
    sim.inject(ctrl.id, Fault("error"))  # the PLC answers the call with a bad status
    await sim.settle()
    off = {ch.id: ChannelState(False, 0.0) for ch in ctrl.channels}
    with pytest.raises(RequestRejected) as by_apply:
        await driver.apply(off)
    with pytest.raises(RequestRejected) as by_fire:
        await fire(driver, off)
    assert str(by_fire.value) == str(by_apply.value)
    assert "call BridgeLighting/RecallScene" in str(by_fire.value) and "BadDeviceFailure" in str(by_fire.value)
    assert sim.service_count(ctrl.id, "Call") == 3


async def test_nothing_is_prepared_or_fired_without_a_connected_session(plc, driver) -> None:
    sim, ctrl = plc
    assert driver.prepare(BATCH) is None  # never connected: prepare awaits nothing, apply connects
    assert driver.prepare({}) is None
    await driver.connect()
    prepared = driver.prepare(BATCH)
    assert prepared is not None
    await driver.close()  # the session goes between prepare and the beat
    assert prepared.fire() is None
    assert driver.prepare(BATCH) is None
    # the PLC drops the connection: what was prepared on it no longer fires
    await driver.connect()
    prepared = driver.prepare(BATCH)
    assert prepared is not None
    sim.inject(ctrl.id, Fault("offline"))
    await sim.settle()
    deadline = time.monotonic() + 3
    while driver.prepare(BATCH) is not None:  # the loss arrives with the socket's close
        assert time.monotonic() < deadline, "the driver did not notice the dropped connection"
        await asyncio.sleep(0.02)
    assert prepared.fire() is None
    assert sim.service_count(ctrl.id, "Write") == 0
    sim.clear(ctrl.id, "offline")
    await sim.settle()
    assert await driver.apply(BATCH) == ApplyResult(operations=1)  # apply reconnects
    assert await fire(driver, {"deck": ChannelState(False, 0.0)}) == ApplyResult(operations=1)
    assert sim.service_count(ctrl.id, "Write") == 2 and driver.sessions == 3


async def test_fire_is_bounded_by_the_controllers_timeout(plc, driver) -> None:
    sim, ctrl = plc
    await driver.connect()
    sim.inject(ctrl.id, Fault("slow", value=1.5))
    prepared = driver.prepare(BATCH)
    assert prepared is not None
    started = time.monotonic()
    future = prepared.fire()
    assert future is not None
    with pytest.raises(ControllerTimeout, match=r"plc-test: Write to opc\.tcp://.*no answer in time"):
        await future
    assert time.monotonic() - started < 1.2  # timeout_s 0.5, not the PLC's 1.5 s
    assert driver.prepare(BATCH) is None  # as after apply's timeout: the next call reconnects
    sim.clear(ctrl.id, "slow")
    assert await driver.apply(BATCH) == ApplyResult(operations=1)


async def test_cancelling_a_fired_send_abandons_it_and_the_session_goes_on(plc, driver) -> None:
    sim, ctrl = plc
    await driver.connect()
    prepared = driver.prepare(BATCH)
    assert prepared is not None
    future = prepared.fire()
    assert future is not None
    future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await future
    assert await fire(driver, {"deck": ChannelState(True, 15.0)}) == ApplyResult(operations=1)
    assert (await driver.read(["deck"])).channels["deck"].level == 15.0
    assert driver.sessions == 1
    assert sim.service_count(ctrl.id, "Write") == 2  # the abandoned Write was on the wire already


def plc_data(cid: str, index: int) -> dict[str, Any]:
    zones = {"deck": "rgb", "cables": "rgb", "piers": "cct", "towers": None}
    return {
        "id": cid, "protocol": "opcua", "profile": "bridge-plc", "host": "127.0.0.1", "port": 24840 + index,  # the farm gives free ports
        "timeout_s": 0.5, "poll_s": 1.0,
        "channels": [
            {"id": z, "point": z, "luminaires": {"count": 100, "kind": "landscape", "led": True, "watts": 18,
                                                 **({"colour": c} if c else {})}}
            for z, c in zones.items()
        ],
    }


async def test_a_shows_cues_are_fired_at_the_beat(make_farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The daemon's show runner prepares every PLC's cue before the beat and fires them in one pass."""
    data = installation_data([plc_data(f"plc-{i}", i) for i in range(3)])
    data["shows"] = [
        {"id": "beat", "target": "*", "duration_s": 1.8,
         "cues": [{"at_s": 0.6 * i, "rules": [{"target": "*", "level": level}]} for i, level in enumerate((20, 80, 40))]}
    ]
    farm, config = await make_farm(data)
    fired: list[str] = []
    real_fire = PreparedRequest.fire

    def counting(prepared: PreparedRequest) -> asyncio.Future[ApplyResult] | None:
        future = real_fire(prepared)
        if future is not None:
            fired.append(prepared.driver.controller_id)
        return future

    monkeypatch.setattr(PreparedRequest, "fire", counting)
    daemon = Daemon(config, database=tmp_path / "show.db")
    await daemon.start()
    try:
        since = time.monotonic()
        run = await daemon.shows.start("beat", user="test")
        assert run.task is not None
        await run.task
        assert run.status == "done"
        assert [r.status for r in run.records] == ["sent"] * 9, run.records
        # every cue of every PLC went out from the beat's pass, none through apply() afterwards
        assert sorted(fired) == sorted(c.id for c in config.controllers() for _ in range(3))
        times = await farm.write_times(since)
        for cue in range(3):
            beat = run.start_monotonic + 0.6 * cue
            assert all(any(beat - 0.005 <= t < beat + 0.6 for t in times[cid]) for cid in times), cue
    finally:
        await daemon.stop()
