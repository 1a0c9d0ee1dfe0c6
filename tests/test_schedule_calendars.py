"""Lunar festivals against an independent table; official holidays and make-up working days."""

from __future__ import annotations

import csv
import logging
from datetime import date, timedelta

import pytest
from test_schedule_support import DATA, active_ids, at, installation_config, load_data, schedule_of

from lightctl.model.schedule import DaySetSpec, OfficialYear
from schedules.calendars import OfficialCalendar, festival_date
from schedules.daysets import DaySets


def _table() -> list[dict[str, str]]:
    with (DATA / "lunar_festivals_2025_2035.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


@pytest.mark.parametrize("row", _table(), ids=lambda row: row["year"])
def test_lunar_festivals_match_the_independent_table(row: dict[str, str]) -> None:
    year = int(row["year"])
    for name in ("spring_festival", "lantern", "dragon_boat", "mid_autumn"):
        assert festival_date(name, year) == date.fromisoformat(row[name]), (name, year)


def test_table_covers_2025_to_2035() -> None:
    assert [int(row["year"]) for row in _table()] == list(range(2025, 2036))


@pytest.mark.parametrize("year", range(2025, 2036))
def test_new_years_eve_and_xiaonian(year: int) -> None:
    eve = festival_date("new_years_eve", year - 1)
    spring = festival_date("spring_festival", year)
    assert eve == spring - timedelta(days=1)
    # 腊月二十三 is 7 days before 除夕 in a 30-day 腊月, 6 in a 29-day one.
    assert (eve - festival_date("xiaonian", year - 1)).days in (6, 7)


def test_festival_day_sets_evaluate_per_gregorian_year() -> None:
    sets = DaySets({}, OfficialCalendar())
    window = sets.dates(DaySetSpec.model_validate("festival:xiaonian..festival:lantern"), 2026)
    # 2026: 腊月二十三 of the Snake year is 10 Feb; the Lantern Festival 3 Mar.
    assert min(window) == date(2026, 2, 10) and max(window) == date(2026, 3, 3)
    assert len(window) == 22
    # The window that starts in January 2027 and the one that ends in January 2025 are both cut at the year.
    assert sets.dates(DaySetSpec.model_validate("festival:spring_festival-2..festival:spring_festival+2"), 2025) == {
        date(2025, 1, 27) + timedelta(days=i) for i in range(5)
    }
    assert sets.dates(DaySetSpec.model_validate("lunar:8-15"), 2033) == {date(2033, 9, 8)}


def test_official_holidays_and_makeup_workdays_2026() -> None:
    calendar = OfficialCalendar()
    assert calendar.holiday(date(2026, 2, 16)) == "spring_festival"
    assert calendar.is_makeup_workday(date(2026, 2, 14))  # a Saturday worked for the Spring Festival
    assert calendar.is_workday(date(2026, 2, 14))
    assert not calendar.is_workday(date(2026, 2, 23))  # a Monday inside the holiday
    assert calendar.holiday(date(2026, 10, 1)) == "national_day"
    assert "2004-2026" in calendar.covered_years()


def test_the_schedule_follows_holidays_and_makeup_days() -> None:
    schedule, _ = schedule_of(installation_config())
    # Saturday 14 Feb 2026 is a make-up working day: normal working-day hours (and the Saturday show).
    assert "normal-night" in active_ids(schedule, at("2026-02-14 21:15"))
    assert set(active_ids(schedule, at("2026-02-14 22:00"))) == {"street-dusk-to-dawn"}
    # Monday 23 Feb 2026 is inside the holiday: the festive night runs past midnight.
    assert active_ids(schedule, at("2026-02-24 00:30"))[-1] == "spring-festival-holiday"
    # Saturday 21 Mar 2026 is an ordinary rest day: lit until 22:30.
    assert "restday-night" in active_ids(schedule, at("2026-03-21 22:15"))


def test_a_year_without_its_official_arrangement_gets_the_statutory_holidays_marked_estimated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 13.7: 2027 has no published arrangement in chinesecalendar 1.11. Its public holidays
    follow from the law's rules (the ``holidays`` package); nights are marked estimated and the
    operator is told, until a published year is loaded through holiday_files."""
    schedule, _ = schedule_of(installation_config())
    warnings = schedule.calendar_warnings(date(2026, 12, 1), date(2027, 1, 31))
    assert len(warnings) == 1
    assert "arrangement for 2027 is not known" in warnings[0] and "2004-2026" in warnings[0]
    assert "estimated from the statutory rules" in warnings[0] and "holiday_files" in warnings[0]
    with caplog.at_level(logging.WARNING, logger="schedules.calendars"):
        schedule.active(at("2027-05-01 20:00"))
    assert any("arrangement for 2027 is not known" in record.getMessage() for record in caplog.records)
    official = schedule.official
    # New Year (Friday 1 Jan 2027) and National Day are holidays, not working-day nights.
    assert official.holiday(date(2027, 1, 1)) == "new_years_day" and not official.is_workday(date(2027, 1, 1))
    assert official.holiday(date(2027, 10, 1)) == "national_day"
    assert "normal-night" not in active_ids(schedule, at("2027-01-01 20:00"))
    assert "restday-night" in active_ids(schedule, at("2027-01-01 22:00"))
    # Monday 3 May 2027: Labour Day falls on a weekend, so the law gives the Monday in lieu. No
    # maintenance night on a holiday, and Mid-Autumn (Wednesday 15 Sep 2027) has its show.
    assert official.holiday(date(2027, 5, 3)) == "labour_day"
    assert "nanan-maintenance" not in active_ids(schedule, at("2027-05-03 20:00"))
    assert "nanan-maintenance" in active_ids(schedule, at("2027-05-10 20:00"))  # an ordinary Monday
    assert official.holiday(date(2027, 9, 15)) == "mid_autumn_festival"
    assert "show-summer" in active_ids(schedule, at("2027-09-15 21:10"))
    # Make-up working days are the published arrangement's alone: none is invented.
    assert not any(official.is_makeup_workday(date(2027, 1, 1) + timedelta(days=n)) for n in range(365))
    assert official.estimated(date(2027, 6, 1)) and not official.estimated(date(2026, 6, 1))


EXAMPLE_2027 = OfficialYear.model_validate(
    {
        "year": 2027,
        "source": "test data, not the official 2027 arrangement",
        "holidays": {"labour_day": ["2027-05-01..2027-05-05"], "national_day": ["2027-10-01..2027-10-07"]},
        "makeup_workdays": {"labour_day": ["2027-04-25"]},
    }
)


def test_a_year_added_in_config_is_used_and_covered() -> None:
    data = load_data()
    data["schedule"]["official_years"] = [EXAMPLE_2027.model_dump()]
    schedule, _ = schedule_of(installation_config(data))
    assert schedule.calendar_warnings(date(2027, 1, 1), date(2027, 12, 31)) == []
    assert "2004-2027" in schedule.official.covered_years()
    assert "restday-night" in active_ids(schedule, at("2027-05-03 22:00"))  # Monday, May Day holiday
    assert "normal-night" in active_ids(schedule, at("2027-04-25 20:00"))  # Sunday, make-up working day
    assert "show-summer" in active_ids(schedule, at("2027-05-04 21:10"))  # holiday show slot, summer time


def test_a_config_year_replaces_the_package_year() -> None:
    replaced = OfficialYear.model_validate({"year": 2026, "holidays": {"national_day": ["2026-10-01"]}})
    calendar = OfficialCalendar([replaced])
    assert calendar.holiday(date(2026, 10, 1)) == "national_day"
    assert calendar.holiday(date(2026, 10, 2)) is None
    assert calendar.holiday(date(2026, 2, 17)) is None
    assert calendar.holiday(date(2025, 10, 2)) == "national_day"
