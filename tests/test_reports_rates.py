"""The action plan's rates on a small inventory, worked out by hand (tests/reports_support.py,
``two_regions``): each figure with its numerator, denominator, its region's target and verdict."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from reports_support import InMemoryCases, by_key, config_of, reports_for, store_for, two_regions

from lightctl.services.reports.period import Period
from lightctl.services.reports.service import ReportError
from lightctl.services.reports.sources import CaseCounts
from lightctl.store.inspections import ClassRow, Inspection, SiteRow

JANUARY = "2027-01"


async def test_inventory_rates_by_hand(tmp_path: Path) -> None:
    config = config_of(two_regions())
    async with store_for(tmp_path / "r.db", config) as store:
        reports = reports_for(config, store)
        table = (await reports.rates(Period.month(JANUARY, reports.zone), "district")).as_json()
    rows = table["rows"]
    # d1: street 10 + 20 remote, 40 on the legacy time clock: 30 of 70; LED 10 of 70.
    d1 = by_key(rows, level="district", group="d1", figure="street_intelligent_control")
    assert (d1["numerator"], d1["denominator"], d1["value"], d1["target"], d1["met"]) == (30, 70, 0.4286, 0.95, False)
    d1_led = by_key(rows, level="district", group="d1", figure="street_led_share")
    assert (d1_led["numerator"], d1_led["denominator"], d1_led["value"], d1_led["met"]) == (10, 70, 0.1429, False)
    d1_landscape = by_key(rows, level="district", group="d1", figure="landscape_led_share")
    assert (d1_landscape["numerator"], d1_landscape["denominator"], d1_landscape["target"], d1_landscape["met"]) == (30, 30, 0.9, True)
    # d2 is western: 80% and 50% are its targets, and it meets them.
    d2 = by_key(rows, level="district", group="d2", figure="street_intelligent_control")
    assert (d2["value"], d2["target"], d2["met"], d2["region"]) == (1.0, 0.8, True, "western")
    assert by_key(rows, level="district", group="d2", figure="street_led_share")["target"] == 0.5
    # Decorations count as landscape lighting.
    d2_landscape = by_key(rows, level="district", group="d2", figure="landscape_intelligent_control")
    assert (d2_landscape["numerator"], d2_landscape["denominator"], d2_landscape["target"]) == (10, 10, None)
    # Regions, then the whole area: two regions, so no single target; it meets only if both do.
    assert by_key(rows, level="region", group="western", figure="street_intelligent_control")["met"] is True
    area = by_key(rows, level="area", group="area", figure="street_intelligent_control")
    assert (area["numerator"], area["denominator"], area["value"], area["target"], area["met"]) == (80, 120, 0.6667, None, False)
    area_landscape = by_key(rows, level="area", group="area", figure="landscape_led_share")
    assert (area_landscape["numerator"], area_landscape["denominator"], area_landscape["target"], area_landscape["met"]) == (40, 40, None, True)
    assert [c["key"] for c in table["columns"]] == ["label", "title", "numerator", "denominator", "value", "target", "met"]


async def test_condition_and_online_rates_sum_the_periods_inspections(tmp_path: Path) -> None:
    config = config_of(two_regions())
    async with store_for(tmp_path / "r.db", config) as store:
        reports = reports_for(config, store)
        zone = reports.zone
        for day, faulty, online in ((3, 1.0, 1), (4, 3.0, 0)):
            at = reports.calendar.day_start(date(2027, 1, day)) + 22 * 3_600_000
            await store.inspections.add(Inspection(at, "22:00", "test", [
                ClassRow("s1", "d1", "main_city", "arterial", 10, 10, 10 - faulty, 0, faulty),
                ClassRow("s1", "d1", "main_city", "other", 20, 20, 20, 0, 0),
                ClassRow("s1", "d1", "main_city", "landscape", 30, 30, 27, 0, 3),
            ], [SiteRow("s1", "d1", "main_city", 1, online)]))
        # One in February: outside the period.
        await store.inspections.add(Inspection(reports.calendar.day_start(date(2027, 2, 1)), "22:00", "test",
                                               [ClassRow("s1", "d1", "main_city", "arterial", 10, 10, 0, 0, 10)], []))
        rows = (await reports.rates(Period.month(JANUARY, zone), "site")).as_json()["rows"]
    road = by_key(rows, level="site", group="s1", figure="road_facility_condition")
    # Two inspections of 30 road lights: 1 then 3 out of service: (60 - 4) / 60.
    assert (road["numerator"], road["denominator"], road["value"], road["target"], road["met"]) == (56, 60, 0.9333, 0.95, False)
    landscape = by_key(rows, level="site", group="s1", figure="landscape_facility_condition")
    assert (landscape["numerator"], landscape["denominator"], landscape["value"], landscape["met"]) == (54, 60, 0.9, True)
    online = by_key(rows, level="site", group="s1", figure="controllers_online")
    assert (online["numerator"], online["denominator"], online["value"], online["target"]) == (1, 2, 0.5, None)
    # The western site had no inspection: nothing to divide, no verdict.
    assert by_key(rows, level="site", group="s2", figure="road_facility_condition")["value"] is None


async def test_cases_on_time_leave_deferred_cases_out_of_the_denominator(tmp_path: Path) -> None:
    config = config_of(two_regions())
    cases = InMemoryCases([
        CaseCounts("d1", "s1", due=10, deferred=2, handled_on_time=7, closed_on_time=6, closed=8),
        CaseCounts("d2", None, due=5, deferred=0, handled_on_time=4, closed_on_time=4, closed=5),
    ])
    async with store_for(tmp_path / "r.db", config) as store:
        reports = reports_for(config, store, cases=cases)
        period = Period.month(JANUARY, reports.zone)
        rows = (await reports.workorders(period, "district")).as_json()["rows"]
        assert cases.asked == [period.bounds(reports.calendar)]
        rates_rows = (await reports.rates(period, "district")).as_json()["rows"]
    handled = by_key(rows, level="district", group="d1", figure="case_handling_on_time")
    assert (handled["numerator"], handled["denominator"], handled["value"], handled["target"], handled["met"]) == (7, 8, 0.875, 0.85, True)
    closed = by_key(rows, level="district", group="d1", figure="case_closure_on_time")
    assert (closed["numerator"], closed["denominator"], closed["value"], closed["target"], closed["met"]) == (6, 8, 0.75, 0.9, False)
    western = by_key(rows, level="district", group="d2", figure="case_handling_on_time")
    assert (western["value"], western["target"], western["met"]) == (0.8, 0.8, True)
    assert by_key(rows, level="district", group="d2", figure="case_closure_on_time")["met"] is False  # 0.8 < 0.85
    assert by_key(rows, level="area", group="area", figure="case_closure")["value"] == round(13 / 13, 4)
    assert by_key(rates_rows, level="district", group="d1", figure="case_handling_on_time") == {**handled}


async def test_a_report_without_work_orders_says_so_and_bad_requests_name_the_problem(tmp_path: Path) -> None:
    config = config_of(two_regions())
    async with store_for(tmp_path / "r.db", config) as store:
        reports = reports_for(config, store)
        period = Period.month(JANUARY, reports.zone)
        table = (await reports.workorders(period)).as_json()
        assert table["rows"] == [] and any("not connected" in n for n in table["notes"])
        only = (await reports.rates(period, "district", district="永川")).as_json()["rows"]
        assert {r["group"] for r in only if r["level"] == "district"} == {"d2"}
        with pytest.raises(ReportError, match=r"unknown district .nowhere.; known: d1 \(渝中\), d2"):
            await reports.rates(period, "district", district="nowhere")
        with pytest.raises(ReportError, match="rates are grouped by one of site, district, region, area, not 'day'"):
            await reports.rates(period, "day")
        with pytest.raises(ReportError, match="--to '2027-13-01'"):
            reports.period("2027-01-01", "2027-13-01")
        with pytest.raises(ReportError, match=r"ends \(2026-12-01\) before it begins"):
            reports.period("2027-01-01", "2026-12-01")
