"""What daliserver v2 gateways did in the field (issue 12), against a simulator that does it too:
status 255 when the frame could not go on the bus, and send-twice pairs over a slow link."""

from __future__ import annotations

import io

import pytest

from drivers.base import ControllerUnreachable, Fault
from drivers.dali.levels import fade_code
from drivers.dali.sim import SimGateway
from lightctl.cli.dali import run_scan
from lightctl.model.values import ChannelState, FaultKind
from tests.test_dali_common import (
    GATEWAYS,
    controller,
    controller_data,
    no_leftover_tasks,
    running,
    with_endpoint,
)

DIM = ChannelState(True, 40.0, fade_s=2.0)


def _all(ctrl, state):  # type: ignore[no-untyped-def]
    return {ch.id: state for ch in ctrl.channels}


def _fade_codes(sim: SimGateway) -> set[int]:
    return {g.fade_code for line in sim.lines.values() for g in line.gear.values()}


def _frame_kinds(driver, batch) -> str:  # type: ignore[no-untyped-def]
    return " ".join(op.detail for op in driver.plan(batch))


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_a_command_the_gateway_could_not_put_on_the_bus_is_not_delivered(gateway: str) -> None:
    """daliserver answers 255 (the WebSocket gateway "no bus voltage") when the frame did not go
    out: apply must fail, and the driver must not believe the gear hold the new fade time."""
    ctrl = controller(controller_data(gateway=gateway, lines=2, gear=16, groups=2))
    async with running(ctrl) as (host, (driver,)):
        await driver.connect()
        host.inject(ctrl.id, Fault("error"))
        with pytest.raises(ControllerUnreachable, match=r"line \d \(.*127\.0\.0\.1.*could not put the frame on the bus"):
            await driver.apply(_all(ctrl, DIM))
        assert _fade_codes(host.gateway(ctrl.id)) == {0}
        host.clear(ctrl.id)
        assert "SetFadeTime" in _frame_kinds(driver, _all(ctrl, DIM))  # not believed delivered
        result = await driver.apply(_all(ctrl, DIM))
        assert result.rejected == {}
        assert _fade_codes(host.gateway(ctrl.id)) == {fade_code(2.0)}
        assert "SetFadeTime" not in _frame_kinds(driver, _all(ctrl, DIM))
    await no_leftover_tasks()


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_scan_of_a_dead_bus_fails_naming_the_gateway_and_line(gateway: str) -> None:
    ctrl = controller(controller_data(gateway=gateway, lines=1, gear=8, groups=2))
    async with running(ctrl) as (host, _):
        host.inject(ctrl.id, Fault("error"))
        out, err = io.StringIO(), io.StringIO()
        code = await run_scan(with_endpoint(ctrl, host), None, out, err, as_json=False)
    assert code == 1
    assert "gear found" not in out.getvalue()
    assert "scan failed: unreachable" in err.getvalue() and "line 1 (" in err.getvalue()
    assert "127.0.0.1:" in err.getvalue()
    await no_leftover_tasks()


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_poll_of_a_dead_bus_is_lost_communication_not_lamp_failures(gateway: str) -> None:
    ctrl = controller(controller_data(gateway=gateway, lines=1, gear=8, groups=2))
    async with running(ctrl) as (host, (driver,)):
        await driver.connect()
        host.inject(ctrl.id, Fault("error"))
        with pytest.raises(ControllerUnreachable, match="could not put the frame on the bus"):
            await driver.read()
        host.clear(ctrl.id)
        reading = await driver.sweep_once()
        assert all(not r.faults for r in reading.channels.values())
    await no_leftover_tasks()


async def test_a_real_collision_still_reads_as_lamp_failure_over_daliserver() -> None:
    """Two failed lamps answer a group's yes/no query at once: daliserver reports 255 for the
    garbled answer too; the frame sent after it goes through, so it is a collision, a yes."""
    ctrl = controller(controller_data(gateway="daliserver", lines=1, gear=8, groups=2))
    async with running(ctrl) as (host, (driver,)):
        host.inject(ctrl.id, Fault("lamp_failure", channel="l1g1", value=0.5))
        reading = await driver.sweep_once()
        assert reading.channels["l1g1"].faults == frozenset({FaultKind.LAMP_FAILURE})
        assert not reading.channels["l1g0"].faults
    await no_leftover_tasks()


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_send_twice_reaches_the_gear_within_100_ms_over_a_slow_link(gateway: str) -> None:
    """150 ms round trips to the gateway: a SET FADE TIME pair sent one reply after the other
    arrives too far apart and the gear ignore it; the pair must arrive as a pair."""
    ctrl = controller(controller_data(gateway=gateway, lines=1, gear=16, groups=2, timeout_s=2.0))
    async with running(ctrl, timing=True) as (host, (driver,)):
        host.inject(ctrl.id, Fault("latency", value=0.15))
        await driver.connect()
        result = await driver.apply(_all(ctrl, DIM))
        assert result.rejected == {}
        assert _fade_codes(host.gateway(ctrl.id)) == {fade_code(2.0)}
    await no_leftover_tasks()
