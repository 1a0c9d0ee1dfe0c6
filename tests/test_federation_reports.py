"""The city's reports over every district (issue 19, points 2 and 3): each district sends its
energy roll-ups and lighting-on inspections through its outbox, the city copies them into its own
records (PostgreSQL), and its reports equal the sum of the districts' own; what a district measured
while the broker was down reaches the city once when it returns. Real broker, real PostgreSQL,
district daemons on their simulators."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lightctl.federation.district import DistrictNode
from lightctl.model.values import ChannelReading, ControllerReading
from lightctl.process.mosquitto import Mosquitto
from lightctl.runtime.credentials import LocalCredential, write_local_credential
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.reports import reports_of
from lightctl.services.reports.service import Reports
from tests.federation_support import CITY, GROUP, Federation, eventually, start_federation
from tests.test_cli import lightctl
from web.app import bound_port
from web.city import serve_city

SECRET = "lcl_city-reports"
HOUR_S = 3600


@pytest.fixture
async def federation(make_farm: Any, tmp_path: Path, postgres: Any) -> AsyncIterator[Federation]:
    broker = Mosquitto(group=GROUP, city=CITY, districts=["d1", "d2"])
    await asyncio.to_thread(broker.start)
    fed = await start_federation(make_farm, tmp_path, broker, postgres.create_database(f"reports_{time.monotonic_ns()}"),
                                 {"d1": 2, "d2": 1}, rollup_interval_s=1.0)
    try:
        yield fed
    finally:
        await fed.stop()
        await asyncio.to_thread(broker.stop)


async def feed(daemon: Daemon, controller: str, start: float, steps: int, counter: float) -> float:
    """A cabinet lit at 500 W, read every 10 minutes from ``start``; its meter's last value."""
    channels = {f"c{i}": ChannelReading(on=True, level=100.0) for i in range(4)}
    for step in range(steps):
        counter += 500 / 6 / 1000
        daemon.store.observations.record_reading(controller, ControllerReading(start + step * 600, channels, 500.0, counter))
    await daemon.store.flush()
    return counter


async def totals(reports: Reports, kind: str) -> dict[str, tuple[Any, ...]]:
    period = reports.period(None, None)
    if kind == "energy":
        table = (await reports.energy(period, "district")).as_json()
        return {r["group"]: (round(r["kwh"], 6), round(r["metered_kwh"], 6), round(r["peak_kwh"], 6)) for r in table["rows"]}
    table = (await reports.lighting_on(period, "district")).as_json()
    return {  # each district's rows (a district's own report also sums its region and area: itself alone)
        f"{r['group']}/{r['figure']}": (r["numerator"], r["denominator"], r["not_reported"])
        for r in table["rows"] if r["group"] in ("d1", "d2")
    }


async def districts_total(fed: Federation, kind: str) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for daemon in fed.districts.values():
        out |= await totals(reports_of(daemon).reports, kind)
    return out


async def same_at_the_city(fed: Federation, kind: str) -> bool:
    city, districts = await totals(fed.city.reports(), kind), await districts_total(fed, kind)
    fed.last_seen = (city, districts)  # type: ignore[attr-defined]  # what a failure shows
    return city == districts


async def test_the_citys_reports_are_the_sum_of_the_districts_and_survive_a_broker_outage(federation: Federation) -> None:
    fed = federation
    await fed.city.apply_scene("all-on", "*", user="市调度", until="none")
    # readings after those the daemons took themselves (a meter never goes back), over the next hour and a half
    start = time.time() + 60
    counters = {cid: await feed(fed.districts[cid[:2]], cid, start, 9, 0.0) for cid in ("d1-0", "d1-1", "d2-0")}
    for daemon in fed.districts.values():
        assert await reports_of(daemon).inspect_now("21:00", source="test") is not None

    await eventually(lambda: same_at_the_city(fed, "energy"), what="the city's energy = the districts'")
    await eventually(lambda: same_at_the_city(fed, "lighting-on"), what="the city's lighting-on = the districts'")
    city_rows = (await fed.city.reports().lighting_on(fed.city.reports().period(None, None), "district")).as_json()["rows"]
    area = next(r for r in city_rows if r["group"] == "area" and r["figure"] == "lighting_on_landscape")
    assert (area["numerator"], area["denominator"]) == (300, 300)  # d1's 200 and d2's 100 luminaires, all lit
    energy = await totals(fed.city.reports(), "energy")
    assert set(energy) >= {"d1", "d2"} and energy["d1"][0] > 0 and energy["d2"][0] > 0
    assert len(await fed.city.store.read("SELECT * FROM lighting_inspections")) == 2

    # The API answers the same tables; what only a district can answer is refused, saying so.
    runner = await serve_city(fed.city, "127.0.0.1", 0, local_credential=SECRET)
    url = f"http://127.0.0.1:{bound_port(runner)}"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {SECRET}"}) as session:
            async with session.get(f"{url}/api/v1/reports/energy?by=district") as response:
                assert response.status == 200
                rows = {r["group"]: r["kwh"] for r in (await response.json())["rows"]}
            assert rows["d1"] == pytest.approx(energy["d1"][0]) and rows["d2"] == pytest.approx(energy["d2"][0])
            async with session.get(f"{url}/api/v1/reports/forecast") as response:
                assert response.status == 400 and "each district's" in (await response.json())["error"]
        # `lightctl report` talks to the city as to a district
        config_path = fed.work / "city.json"
        config_path.write_text(json.dumps({"installation": fed.data["installation"], "daemon": {"database": str(fed.work / "c.db")}}),
                               encoding="utf-8")
        write_local_credential(fed.work / "c.db", LocalCredential(SECRET, url))
        cli = ("--config", str(config_path), "--api", url, "report")
        code, out, err = await lightctl(*cli, "energy", "--by", "district", "--json")
        assert code == 0, err
        assert {r["group"]: r["kwh"] for r in json.loads(out)["rows"]} == rows
        code, out, err = await lightctl(*cli, "lighting-on", "--by", "district")
        assert code == 0, err
        assert [line.split()[:2] for line in out.splitlines() if "landscape" in line] == [
            ["渝中", "Yuzhong"], ["江北", "Jiangbei"], ["主城区", "main"], ["全域", "whole"]]
        code, out, err = await lightctl(*cli, "monthly", "--month", time.strftime("%Y-%m"), "--json")
        assert code == 0, err
        monthly = {t["name"]: t for t in json.loads(out)["tables"]}
        assert {"rates", "lighting-on", "energy by district", "work orders"} <= set(monthly)
        assert {r["group"]: r["kwh"] for r in monthly["energy by district"]["rows"]} == rows
        code, out, err = await lightctl(*cli, "forecast")
        assert code == 2 and "each district's" in err, (code, out, err)
    finally:
        await runner.cleanup()

    # The broker goes down; the districts go on measuring and inspecting, and keep it for the city.
    await asyncio.to_thread(fed.broker.kill)
    node = next(s for s in fed.districts["d1"].services if isinstance(s, DistrictNode))
    await eventually(lambda: node.state != "online", what="d1 knows the broker is gone")
    await feed(fed.districts["d1"], "d1-0", start + 9 * 600, 3, counters["d1-0"])
    assert await reports_of(fed.districts["d2"]).inspect_now("22:00", source="test") is not None
    sent = node.rollups.rows_sent
    await eventually(lambda: node.rollups.rows_sent > sent, what="d1's new hours kept in its outbox")
    assert not await same_at_the_city(fed, "energy")
    await asyncio.to_thread(fed.broker.restart)
    await eventually(lambda: same_at_the_city(fed, "energy"), what="the city's energy the districts' again")
    await eventually(lambda: same_at_the_city(fed, "lighting-on"), what="the city's lighting-on the districts' again")
    taken = await fed.city.store.read("SELECT id FROM federation_events WHERE district = 'd1' AND kind IN ('rollup', 'inspection') ORDER BY id")
    sent = await fed.districts["d1"].store.read("SELECT id FROM federation_outbox WHERE kind IN ('rollup', 'inspection') ORDER BY id")
    assert taken and [r["id"] for r in taken] == [r["id"] for r in sent][:len(taken)]  # each once, in order (a newer round may be on its way)
    copies = await fed.city.store.read("SELECT district, district_inspection_id FROM federation_inspection_copies ORDER BY 1, 2")
    assert [(r["district"], r["district_inspection_id"]) for r in copies] == [("d1", 1), ("d2", 1), ("d2", 2)]  # each once
    days = await fed.city.store.read("SELECT controller_id, SUM(kwh) AS kwh FROM energy_days GROUP BY controller_id ORDER BY 1")
    hours = await fed.city.store.read("SELECT controller_id, SUM(kwh) AS kwh FROM energy_hours GROUP BY controller_id ORDER BY 1")
    assert [(r["controller_id"], pytest.approx(r["kwh"])) for r in days] == [(r["controller_id"], r["kwh"]) for r in hours]
