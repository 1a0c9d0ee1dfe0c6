"""A district's roll-ups for the city, store to store (no broker: tests/test_federation_reports.py
has the whole path): every hour whose rows change is sent again, however old (a meter step spread
back over a gap), in bounded events, and nothing twice when nothing changed; an hour written
while a round read it goes again; the city's hours,
days, months and energy report equal the district's; an inspection larger than a page goes in
parts and is taken once. District and city on either database."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import StoreBackend
from reports_support import config_of, reports_for, store_for
from test_reports_energy import ZONE, data, local, state

from lightctl.federation import rollups
from lightctl.federation.rollups import ROLLUP, RollupReporter, RollupTaker
from lightctl.model.values import ControllerReading
from lightctl.services.reports.period import Period
from lightctl.store import Store
from lightctl.store.district_copies import changed_hours, forget_changed
from lightctl.store.federation import OutboxEvent
from lightctl.store.inspections import prune_inspections

DAY = date(2026, 1, 15)  # long past: the hours changed below are far older than the open and the previous hour


def district_data() -> dict[str, Any]:
    return {**data(), "federation": {"role": "district", "node": "d1", "broker": {"tls": False}}}


async def send(reporter: RollupReporter, district: Store, city: Store, after: int) -> tuple[list[Any], int]:
    """Rounds until nothing is left, then the outbox's new events into the city's records."""
    while (await reporter.report()).more:
        pass
    events = await district.federation.outbox_after(after, 10_000)
    taken, last = await city.federation.receive("d1", events, RollupTaker("Asia/Shanghai"))
    assert len(taken) == len(events)
    return events, last


async def table(store: Store, name: str, key: str) -> list[tuple[Any, ...]]:
    rows = await store.read(
        f"SELECT {key}, controller_id, channel_id, kwh, metered_kwh, peak_kwh, valley_kwh, covered_s FROM {name} ORDER BY 1, 2, 3"
    )
    return [tuple(pytest.approx(v, abs=1e-9) if isinstance(v, float) else v for v in r.values()) for r in rows]


async def test_every_hour_that_changes_reaches_the_city_however_old(backend: StoreBackend) -> None:
    config = config_of(district_data())
    start = local(DAY, 19 * 60)
    async with store_for(backend.target("district"), config) as district, store_for(backend.target("city"), config) as city:
        reporter = RollupReporter(district, 1.0, lambda: None)
        for step in range(7):  # 1 kW for an hour from 19:00, read every 10 minutes
            district.observations.record_reading("met", ControllerReading(start + step * 600, state(100.0), 1000.0, 10.0 + step / 6))
        await district.flush()
        events, last = await send(reporter, district, city, 0)
        assert {json.loads(e.body)["rows"][0][0] for e in events if e.kind == ROLLUP} == {int(start * 1000)}

        # Nothing is seen of the cabinet for five hours (a link cut, the daemon stopped); then its
        # meter has counted 5 kWh more: spread over the hours between, 20:00 to 00:00 (the next day).
        district.observations.record_reading("met", ControllerReading(start + 6 * 3600, state(100.0), 1000.0, 16.0))
        await district.flush()
        restarted = RollupReporter(district, 1.0, lambda: None)  # and a restart of the district daemon: nothing in memory
        events, last = await send(restarted, district, city, last)
        hours = sorted({row[0] for e in events if e.kind == ROLLUP for row in json.loads(e.body)["rows"]})
        assert [h - int(start * 1000) for h in hours] == [i * 3_600_000 for i in range(1, 6)]

        assert await table(city, "energy_hours", "hour") == await table(district, "energy_hours", "hour")
        assert await table(city, "energy_days", "day") == await table(district, "energy_days", "day")
        assert await table(city, "energy_months", "month") == await table(district, "energy_months", "month")
        period = Period(DAY, DAY + timedelta(days=1), ZONE)
        ours = (await reports_for(config, district).energy(period, "hour")).as_json()
        theirs = (await reports_for(config, city).energy(period, "hour")).as_json()
        assert theirs["rows"] == ours["rows"] and theirs["total"] == ours["total"]
        assert ours["total"]["metered_kwh"] == pytest.approx(6.0)

        assert (await reporter.report()).events == []  # nothing changed: nothing sent
        assert await district.read("SELECT * FROM energy_hours_changed") == []


async def test_an_hour_written_again_while_its_rows_were_read_keeps_its_note(tmp_path: Path) -> None:
    config = config_of(district_data())
    start = local(DAY, 19 * 60)
    async with store_for(tmp_path / "district.db", config) as district:
        for step in range(2):
            district.observations.record_reading("met", ControllerReading(start + step * 600, state(100.0), 1000.0, 10.0 + step / 6))
        await district.flush()
        read = await district.read_with(lambda conn: changed_hours(conn, 10))
        assert [hour for hour, _ in read] == [int(start * 1000)]
        district.observations.record_reading("met", ControllerReading(start + 1200, state(100.0), 1000.0, 10.0 + 2 / 6))
        await district.flush()  # the same hour written again before the round kept what it read
        await district.write(lambda conn: forget_changed(conn, read))
        again = await district.read_with(lambda conn: changed_hours(conn, 10))
        assert [hour for hour, _ in again] == [int(start * 1000)] and again[0][1] > read[0][1]  # it goes again next round
        await district.write(lambda conn: forget_changed(conn, again))
        assert await district.read_with(lambda conn: changed_hours(conn, 10)) == []


async def test_an_inspection_larger_than_a_page_goes_in_parts_and_is_taken_once(
    backend: StoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollups, "PAGE_ROWS", 3)
    config = config_of(district_data())
    rows = [(f"s{i}", "d1", "r1", kind, 10, 10, 9.0, 0, 1.0) for i in range(4) for kind in ("landscape", "other")]
    sites = [(f"s{i}", "d1", "r1", 2, 2) for i in range(4)]

    def inspection(conn: Any) -> None:
        conn.execute("INSERT INTO lighting_inspections (id, at, instant, source) VALUES (7, 1768478400000, '20:00', 'schedule')")
        conn.executemany("INSERT INTO lighting_inspection_rows (inspection_id, site_id, district_id, region, lighting_class,"
                         " luminaires, should_be_lit, lit, not_reported, faulty) VALUES (7,?,?,?,?,?,?,?,?,?)", rows)
        conn.executemany("INSERT INTO lighting_inspection_sites (inspection_id, site_id, district_id, region, controllers, online)"
                         " VALUES (7,?,?,?,?,?)", sites)

    async with store_for(backend.target("district"), config) as district, store_for(backend.target("city"), config) as city:
        await district.write(inspection)
        reporter = RollupReporter(district, 1.0, lambda: None)
        events, last = await send(reporter, district, city, 0)
        parts = [json.loads(e.body) for e in events]
        assert [p["part"] for p in parts] == [0, 1, 2, 3]
        assert all(len(p["rows"]) + len(p["sites"]) <= 3 for p in parts)

        copied = await city.read("SELECT inspection_id FROM federation_inspection_copies WHERE district = 'd1' AND district_inspection_id = 7")
        copy = copied[0]["inspection_id"]
        got_rows = await city.read(f"SELECT * FROM lighting_inspection_rows WHERE inspection_id = {copy} ORDER BY site_id, lighting_class")
        assert [tuple(r.values())[1:] for r in got_rows] == rows
        got_sites = await city.read(f"SELECT * FROM lighting_inspection_sites WHERE inspection_id = {copy} ORDER BY site_id")
        assert [tuple(r.values())[1:] for r in got_sites] == sites

        # Sent again (a district restored from a backup: its outbox ids again): the same inspection is not counted twice.
        again = [OutboxEvent(last + 1 + i, e.at, e.kind, e.controller_id, e.body) for i, e in enumerate(events)]
        taken, _ = await city.federation.receive("d1", again, RollupTaker("Asia/Shanghai"))
        assert len(taken) == 4
        assert len(await city.read("SELECT * FROM lighting_inspections")) == 1
        assert len(await city.read("SELECT * FROM lighting_inspection_rows")) == len(rows)
        period = Period(DAY, DAY, ZONE)
        lit = (await reports_for(config, city).lighting_on(period, "district")).as_json()
        assert lit["rows"] and (await reports_for(config, district).lighting_on(period, "district")).as_json()["rows"] == lit["rows"]

        # the city prunes its copies as a district prunes its own inspections (the record of whose copy it was with it)
        assert await city.write(lambda conn: prune_inspections(conn, int(local(DAY, 24 * 60) * 1000)))
        assert await city.read("SELECT * FROM federation_inspection_copies") == []
        assert await city.read("SELECT * FROM lighting_inspections") == []
