"""Faults carried by BACnet buildings, OPC UA bridge PLCs and DALI gateways, injected in their
simulators and found by the daemon once, with kind, place and evidence, then cleared."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import installation_data
from test_faults_modbus import FAST_FAULTS, alarms, start, wait_for

from drivers.bacnet.bench import controller_data as bacnet_controller
from drivers.base import Fault
from drivers.dali.bench import controller_data as dali_controller
from drivers.opcua.bench import controller_data as opcua_controller
from lightctl.model.values import FaultKind

K = FaultKind


def data(controller: dict[str, Any], poll_s: float) -> dict[str, Any]:
    out = installation_data([{**controller, "poll_s": poll_s, "timeout_s": 1.0}])
    out["faults"] = dict(FAST_FAULTS)
    return out


async def check(farm: Any, daemon: Any, faults: Any, cid: str, injected: list[Fault],
                expected: dict[tuple[FaultKind, str | None], str], timeout: float) -> None:
    await daemon.apply_scene("all-on", "*", user="值班员", until=None)
    await asyncio.sleep(1.0)
    assert not alarms(faults), [r.evidence for r in alarms(faults).values()]
    for fault in injected:
        await farm.inject(cid, fault)
    want = {(cid, kind, channel) for kind, channel in expected}
    await wait_for(lambda: set(alarms(faults)) >= want, timeout, f"alarms {sorted(want)}")
    await asyncio.sleep(1.0)
    found = alarms(faults)
    assert set(found) == want, sorted(set(found) ^ want)
    for (kind, channel), evidence in expected.items():
        assert evidence in found[(cid, kind, channel)].evidence, found[(cid, kind, channel)].evidence
    await farm.clear(cid)
    await wait_for(lambda: not faults.service.tracker.by_id, timeout + 5, "every fault to clear")


async def test_bacnet_building_faults(make_farm: Any, tmp_path: Path) -> None:
    farm, config = await make_farm(data(bacnet_controller(0), poll_s=0.5))
    daemon, faults = await start(config, tmp_path / "b.db")
    try:
        await check(
            farm, daemon, faults, "bn00000",
            [Fault("lamp_failure", "f2"), Fault("breaker_trip", "f3"), Fault("device_fault", "f4")],
            {(K.LAMP_FAILURE, "f2"): "0 W of 1.4 kW expected at 100%", (K.BREAKER_TRIP, "f3"): "breaker tripped",
             (K.DEVICE_FAULT, "f4"): "the device reports a fault"},
            timeout=10.0,
        )
        # silence: a building that stops answering pushes nothing for three of its intervals
        await farm.inject("bn00000", Fault("offline"))
        await wait_for(lambda: (("bn00000", K.COMM_LOST, None) in alarms(faults)), 10.0, "communication lost")
        (lost,) = alarms(faults).values()
        assert "no pushed reading for" in lost.evidence and "3 intervals of 0.5 s" in lost.evidence
        await farm.clear("bn00000")
        await wait_for(lambda: not faults.service.tracker.by_id, 10.0, "communication back")
    finally:
        await daemon.stop()


async def test_opcua_bridge_plc_faults(make_farm: Any, tmp_path: Path) -> None:
    farm, config = await make_farm(data(opcua_controller(0), poll_s=0.5))
    daemon, faults = await start(config, tmp_path / "o.db")
    try:
        await check(
            farm, daemon, faults, "ua00000",
            [Fault("zone_failure", "piers"), Fault("lamp_failure", "cables", 0.5), Fault("breaker_trip", "towers"),
             Fault("door_open")],
            {(K.DEVICE_FAULT, "piers"): "the device reports a fault", (K.LAMP_FAILURE, "cables"): "6.6 kW of 13.2 kW expected",
             (K.BREAKER_TRIP, "towers"): "breaker tripped", (K.DOOR_OPEN, None): "door contact open"},
            timeout=10.0,
        )
    finally:
        await daemon.stop()


async def test_dali_gateway_faults(make_farm: Any, tmp_path: Path) -> None:
    farm, config = await make_farm(data(dali_controller(1), poll_s=1.0))
    daemon, faults = await start(config, tmp_path / "d.db")
    try:
        await check(
            farm, daemon, faults, "dali00001",
            [Fault("gear_failure", "l1g0"), Fault("gear_missing", "l2g1", 0.25), Fault("lamp_failure", "l1g2")],
            {(K.GEAR_FAILURE, "l1g0"): "report a failure", (K.GEAR_FAILURE, "l2g1"): "not answering",
             (K.LAMP_FAILURE, "l1g2"): "lamp failure"},
            timeout=20.0,
        )
    finally:
        await daemon.stop()
