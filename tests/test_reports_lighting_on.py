"""Lighting-on inspections against the Modbus simulators with faults injected: a circuit with half
its lamps failed, a tripped circuit, a cabinet offline; taken by the daemon at a configured
instant, stored, and summed by the report."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from conftest import StoreBackend, installation_data, modbus_controller
from reports_support import InMemoryFaults, by_key
from test_store_writer import eventually

from drivers.base import Fault
from lightctl.model.values import FaultKind
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.reports import ReportsService, reports_of
from lightctl.runtime.wiring import attach_services
from lightctl.services.reports.period import Period

ZONE = ZoneInfo("Asia/Shanghai")


def data(**reports: Any) -> dict[str, Any]:
    """m0: 10 + 20 landscape lights (20 W, dimmable); m1: street lights, 10 on an arterial road and
    20 on another (relays); m2: 10 landscape lights. One controller per site."""
    m1 = modbus_controller("m1", 1, channels=2, profile="cabinet-12ch-relay", poll_s=1)
    m1["channels"][0]["luminaires"]["road"] = "arterial"
    d = installation_data(
        [modbus_controller("m0", 0, channels=2, poll_s=1), m1, modbus_controller("m2", 2, channels=1, poll_s=1)], per_site=1
    )
    if reports:
        d["reports"] = reports
    return d


async def faulted_daemon(make_farm: Any, database: Path | str, **reports: Any) -> tuple[Daemon, Any]:
    farm, config = await make_farm(data(**reports))
    daemon = attach_services(Daemon(config, database=database))
    await daemon.start()
    await daemon.apply_scene("all-on", "*", user="值班员", until=None)
    await farm.inject("m0", Fault("lamp_failure", "c1", 0.5))
    await farm.inject("m1", Fault("breaker_trip", "c2"))
    await farm.inject("m2", Fault("offline"))

    def seen() -> bool:
        m0, m1, m2 = (daemon.engine.runtimes[c] for c in ("m0", "m1", "m2"))
        half = m0.reading is not None and (m0.reading.channels["c1"].power_w or 0) < 0.6 * 200
        tripped = m1.reading is not None and FaultKind.BREAKER_TRIP in m1.reading.channels["c2"].faults
        return half and tripped and m2.link.state.value == "offline"

    await eventually(seen, timeout=20)
    return daemon, farm


async def test_an_inspection_counts_failed_lamps_tripped_circuits_and_silent_controllers(make_farm: Any, backend: StoreBackend) -> None:
    daemon, _farm = await faulted_daemon(make_farm, backend.target("l"))  # inspections and their reports on both databases
    try:
        service = reports_of(daemon)
        inspection = await service.inspect_now("test", source="test")
        assert inspection is not None
        rows = {(r.site_id, r.lighting_class): r for r in inspection.classes}
        m0 = rows[("site-0", "landscape")]
        # Half the lamps of c1 (10) failed, c2 (20) whole: 25 of 30 lit; the 5 dark are out of service.
        assert (m0.luminaires, m0.should_be_lit, m0.lit, m0.not_reported, m0.faulty) == (30, 30, 25.0, 0, 5.0)
        arterial, other = rows[("site-1", "arterial")], rows[("site-1", "other")]
        assert (arterial.should_be_lit, arterial.lit, arterial.faulty) == (10, 10.0, 0.0)
        assert (other.should_be_lit, other.lit, other.faulty) == (20, 0.0, 20.0)  # tripped: all dark
        m2 = rows[("site-2", "landscape")]
        assert (m2.should_be_lit, m2.lit, m2.not_reported) == (10, 0.0, 10)  # offline: not reported, not dark
        assert {(s.site_id, s.controllers, s.online) for s in inspection.sites} == {("site-0", 1, 1), ("site-1", 1, 1), ("site-2", 1, 0)}

        reports = service.reports
        today = datetime.now(ZONE).date()
        table = (await reports.lighting_on(Period(today - timedelta(days=1), today + timedelta(days=1), ZONE), "area")).as_json()
        landscape = by_key(table["rows"], figure="lighting_on_landscape")
        assert (landscape["numerator"], landscape["denominator"], landscape["not_reported"], landscape["value"]) == (25, 30, 10, 0.8333)
        arterial_rate = by_key(table["rows"], figure="lighting_on_arterial")
        assert (arterial_rate["value"], arterial_rate["target"], arterial_rate["met"]) == (1.0, 0.98, True)
        other_rate = by_key(table["rows"], figure="lighting_on_other_roads")
        assert (other_rate["value"], other_rate["target"], other_rate["met"]) == (0.0, 0.96, False)
        rates = (await reports.rates(Period(today, today, ZONE), "area")).as_json()["rows"]
        road = by_key(rates, figure="road_facility_condition")
        assert (road["numerator"], road["denominator"]) == (10, 30)
        assert by_key(rates, figure="controllers_online")["value"] == round(2 / 3, 4)
        live = daemon.metrics()["lighting_on"]
        assert (live["should_be_lit"], live["lit"], live["not_reported"]) == (70, 35.0, 10)
    finally:
        await daemon.stop()


async def test_the_faults_records_say_what_is_out_of_service_when_connected(make_farm: Any, tmp_path: Path) -> None:
    daemon, _farm = await faulted_daemon(make_farm, tmp_path / "l.db")
    try:
        service = reports_of(daemon)
        service.reports.faults = InMemoryFaults({("m0", "c2"): 3.0, ("m2", "c1"): 10.0})
        inspection = await service.inspect_now("test")
        assert inspection is not None
        faulty = {(r.site_id, r.lighting_class): r.faulty for r in inspection.classes}
        # the records' dark luminaires beside what the readings explain (m0's failed lamps: 5 of c1,
        # which only the measured power can say; m1's tripped c2); m2 is offline: only the records
        assert faulty == {("site-0", "landscape"): 8.0, ("site-1", "arterial"): 0.0, ("site-1", "other"): 20.0, ("site-2", "landscape"): 10.0}
    finally:
        await daemon.stop()


async def test_the_daemon_inspects_by_itself_at_a_configured_instant(make_farm: Any, tmp_path: Path) -> None:
    soon = datetime.now(ZONE) + timedelta(seconds=3)
    farm, config = await make_farm(data(inspections={"instants": [soon.strftime("%H:%M:%S")]}))
    daemon = attach_services(Daemon(config, database=tmp_path / "auto.db"))
    await daemon.start()
    try:
        await daemon.apply_scene("all-on", "*", user="值班员", until=None)
        service = next(s for s in daemon.services if isinstance(s, ReportsService))
        assert service.next_instant(datetime.now(ZONE))[0] == soon.replace(microsecond=0)  # type: ignore[index]
        started = time.monotonic()
        await eventually(lambda: service.taken, timeout=15)
        assert time.monotonic() - started < 10
        stored = await daemon.store.read("SELECT at, instant, source FROM lighting_inspections")
        assert [(r["instant"], r["source"]) for r in stored] == [(soon.strftime("%H:%M:%S"), "schedule")]
        assert abs(stored[0]["at"] / 1000 - soon.timestamp()) < 2.5
    finally:
        await daemon.stop()
    await asyncio.sleep(0)
    del farm
