"""Every fault a Modbus cabinet can carry, injected in the simulators and found by the daemon once,
with its kind, place and evidence, and cleared once the injection is removed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import installation_data, modbus_controller

from drivers.base import Fault
from lightctl.model.maintenance import FaultRecord
from lightctl.model.times import now_ms
from lightctl.model.values import FaultKind
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.faults import Faults
from lightctl.runtime.wiring import attach_services

K = FaultKind

FAST_FAULTS = {"comm_lost_missed": 3, "clear_holdoff_s": 1.0, "convergence_deadline_s": 2.0}


def field_data(count: int, **faults: Any) -> dict[str, Any]:
    controllers = [modbus_controller(f"m{i:02d}", i, channels=3, poll_s=0.5) for i in range(count)]
    data = installation_data(controllers, per_site=count)
    data["faults"] = {**FAST_FAULTS, **faults}
    return data


async def start(config: Any, database: Path) -> tuple[Daemon, Faults]:
    daemon = attach_services(Daemon(config, database=database))
    await daemon.start()
    faults = next(s for s in daemon.services if isinstance(s, Faults))
    return daemon, faults


async def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def open_faults(faults: Faults, cid: str) -> list[FaultRecord]:
    return [r for r in faults.service.tracker.by_id.values() if r.controller_id == cid]


def alarms(faults: Faults) -> dict[tuple[str | None, FaultKind, str | None], FaultRecord]:
    now = now_ms()
    return {(r.controller_id, r.kind, r.channel_id): r for r in faults.service.tracker.by_id.values() if r.alarm(now)}


SCENARIOS: list[tuple[str, Fault, FaultKind, str | None, str]] = [
    ("m00", Fault("breaker_trip", "c2"), K.BREAKER_TRIP, "c2", "breaker tripped"),
    ("m01", Fault("lamp_failure", "c3", 0.5), K.LAMP_FAILURE, "c3", "300 W of 600 W expected at 100%"),
    ("m02", Fault("door_open"), K.DOOR_OPEN, None, "door contact open"),
    ("m03", Fault("phase_loss", value=2), K.PHASE_LOSS, None, "phase B 0 V (A "),
    ("m04", Fault("supply_voltage", value=280), K.OVER_VOLTAGE, None, " V > 265 V"),
    ("m05", Fault("supply_voltage", value=170), K.UNDER_VOLTAGE, None, " V < 180 V"),
    ("m06", Fault("supply_voltage", value=0), K.SUPPLY_LOSS, None, "phases A, B, C at 0 V"),
    ("m07", Fault("cable_theft"), K.CABLE_THEFT, None, "cable-theft input active"),
    ("m08", Fault("leakage"), K.LEAKAGE, None, "leakage alarm input active"),
    ("m09", Fault("over_current"), K.OVER_CURRENT, None, "phase A 150."),
    ("m10", Fault("offline"), K.COMM_LOST, None, "polls of 0.5 s missed"),
]


async def test_each_cabinet_fault_is_found_once_with_its_place_and_evidence_and_clears(make_farm: Any, tmp_path: Path) -> None:
    farm, config = await make_farm(field_data(13))
    daemon, faults = await start(config, tmp_path / "f.db")
    try:
        await daemon.apply_scene("all-on", "*", user="值班员", until=None)
        await asyncio.sleep(1.2)
        assert not faults.service.tracker.by_id, [r.evidence for r in faults.service.tracker.by_id.values()]
        for cid, fault, _, _, _ in SCENARIOS:
            await farm.inject(cid, fault)
        # burning while off: a contactor stuck closed, then the cabinet commanded off
        await farm.inject("m11", Fault("stuck_contactor", "c1"))
        await daemon.apply_scene("all-off", "controller:m11", user="值班员", until=None)
        # unconfirmed: a contactor stuck open, then the cabinet commanded on
        await daemon.apply_scene("all-off", "controller:m12", user="值班员", until=None)
        await farm.inject("m12", Fault("stuck_contactor", "c1"))
        await daemon.apply_scene("all-on", "controller:m12", user="值班员", until=None)
        expected = {(cid, kind, channel): evidence for cid, _, kind, channel, evidence in SCENARIOS}
        expected[("m11", K.STUCK_CONTACTOR, "c1")] = "while commanded off"
        expected[("m12", K.UNCONFIRMED, None)] = "read-back differs: c1: want on 100%, read off"
        await wait_for(lambda: set(alarms(faults)) >= set(expected), 15.0, f"alarms {sorted(expected)}")
        await asyncio.sleep(1.5)  # a few more polls: nothing is raised twice, nothing else is raised
        found = alarms(faults)
        assert set(found) == set(expected), sorted(set(found) ^ set(expected))
        for key, evidence in expected.items():
            rec = found[key]
            assert evidence in rec.evidence, (key, rec.evidence)
            assert len([r for r in open_faults(faults, key[0]) if r.kind is key[1]]) == 1
            assert (rec.site_id, rec.district_id, rec.lat, rec.lon) == ("site-0", "d1", 29.56, 106.58)
        # the lamps behind a lost phase or a dead supply are faults of their own, hidden under their cause
        # (as are the commands a trip or a stuck contactor keeps from confirming)
        hidden = {(r.controller_id, r.kind): faults.service.tracker.by_id[r.parent_id]
                  for r in faults.service.tracker.by_id.values() if r.parent_id is not None}
        assert set(hidden) <= {("m03", K.LAMP_FAILURE), ("m06", K.LAMP_FAILURE), ("m00", K.UNCONFIRMED), ("m11", K.UNCONFIRMED)}
        assert all(cause.controller_id == key[0] for key, cause in hidden.items())
        assert hidden[("m06", K.LAMP_FAILURE)].kind is K.SUPPLY_LOSS and hidden[("m03", K.LAMP_FAILURE)].kind is K.PHASE_LOSS

        for cid, _, _, _, _ in SCENARIOS:
            await farm.clear(cid)
        await farm.clear("m11")
        await farm.clear("m12")
        await wait_for(lambda: not faults.service.tracker.by_id, 20.0, "every fault to clear")
        await faults.service.flush(now_ms())
        stored = await daemon.store.faults.query(limit=100)
        roots = {(r.controller_id, r.kind, r.channel_id) for r in stored if r.parent_id is None}
        assert roots == set(expected), sorted(roots ^ set(expected))
        assert all(r.cleared_at is not None for r in stored)
    finally:
        await daemon.stop()
