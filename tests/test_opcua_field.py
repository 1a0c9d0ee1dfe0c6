"""What PLC stacks other than asyncua did in the field (issue 12, points 4-5), against a simulated
PLC that does it too: sessions ended under a live connection, a Write's items applied one by one.
Point 6 (an untrusted client certificate answered BadSecurityChecksFailed) is in
test_opcua_security.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opcua_helpers import bridge_controller, plc_driver, simulated_plc

from drivers.base import Fault
from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.sim import OpcUaSimulator
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ApplyResult, ChannelState


@pytest.fixture
async def plc() -> AsyncIterator[tuple[OpcUaSimulator, ControllerConfig]]:
    # poll_s is asyncua's health check: a minute, so that only the driver can notice the lost session
    async with simulated_plc(bridge_controller(timeout_s=1.0, poll_s=60.0)) as running:
        yield running


@pytest.fixture
async def driver(plc: tuple[OpcUaSimulator, ControllerConfig]) -> AsyncIterator[OpcUaDriver]:
    async with plc_driver(plc[1]) as d:
        yield d


async def test_a_session_the_plc_ended_is_reconnected_at_once_and_the_batch_sent_again(plc, driver) -> None:
    sim, ctrl = plc
    await driver.connect()
    sim.inject(ctrl.id, Fault("session_closed"))
    await sim.settle()
    assert await driver.apply({"deck": ChannelState(True, 60.0)}) == ApplyResult(operations=1)
    assert driver.sessions == 2
    assert (await driver.read(["deck"])).channels["deck"].level == 60.0
    sim.inject(ctrl.id, Fault("session_closed"))  # a read-back meets it too
    await sim.settle()
    assert (await driver.read(["deck"])).channels["deck"].level == 60.0
    assert driver.sessions == 3


async def test_a_fired_send_that_meets_an_ended_session_is_sent_again(plc, driver) -> None:
    sim, ctrl = plc
    await driver.connect()
    prepared = driver.prepare({"cables": ChannelState(True, 25.0)})
    assert prepared is not None
    sim.inject(ctrl.id, Fault("session_closed"))
    await sim.settle()
    future = prepared.fire()
    assert future is not None
    assert await future == ApplyResult(operations=1)
    assert driver.sessions == 2 and sim.service_count(ctrl.id, "Write") == 2
    assert (await driver.read(["cables"])).channels["cables"].level == 25.0


async def test_a_write_taken_in_part_says_what_the_zone_now_does(plc, driver) -> None:
    """The PLC refuses the Level (below its floor) and takes Enable and FadeTime of the same Write:
    the zone is on at its old level 0. The refusal says so, read back."""
    sim, ctrl = plc
    sim.inject(ctrl.id, Fault("level_floor", value=10.0))
    await sim.settle()
    result = await driver.apply({"deck": ChannelState(True, 5.0, fade_s=1.0), "cables": ChannelState(True, 50.0)})
    assert result.operations == 1 and set(result.rejected) == {"deck"}
    reason = result.rejected["deck"]
    assert reason.startswith("BridgeLighting/Zones/deck/Level: BadOutOfRange")
    assert "written all the same: Enable, FadeTime" in reason
    assert "read back: on=True, level=0.0" in reason
    zone = sim.plcs[ctrl.id].zones["deck"]
    assert (zone.on, zone.level, zone.fade_s) == (True, 0.0, 1.0)  # what the PLC really did
    # the only channel of a batch, half-written: a refusal that says so, not an error that hides it
    result = await driver.apply({"towers": ChannelState(True, 3.0)})
    assert "read back: on=True, level=0.0" in result.rejected["towers"]
