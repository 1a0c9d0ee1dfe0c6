"""The official PRC holiday calendar and the lunisolar calendar, as plain date lookups.

* Official holidays and make-up working days (调休) come from the chinesecalendar package, which
  knows only the years published when it was released, plus any ``OfficialYear`` the config adds
  (each December the State Council publishes the next year).
* A year neither knows gets the public holidays that follow from the law's rules (the ``holidays``
  package computes China's statutory days, and the weekdays off in lieu of those on a weekend,
  for any year), with no make-up working days, which only the published arrangement sets. Such a
  year is *estimated*: every night of it is marked so in the preview and the console, and the
  operator is told until the year is loaded through ``schedule.holiday_files``.
* Lunar dates come from lunar-python (any year). ``LunarYear.fromYear`` costs ~5 ms, so month
  tables are computed once per lunar year and cached.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar
from chinese_calendar import constants as cc
from holidays import country_holidays
from holidays.version import __version__ as holidays_version
from lunar_python import LunarYear, Solar

from lightctl.model.schedule import LUNAR_FESTIVALS, NEW_YEARS_EVE, LunarPoint, OfficialYear

log = logging.getLogger(__name__)

_NAME_BY_VALUE = {holiday.value: holiday.name for holiday in cc.Holiday}
_STATUTORY_NAMES = {
    "New Year's Day": "new_years_day",
    "Chinese New Year's Eve": "spring_festival",
    "Chinese New Year (Spring Festival)": "spring_festival",
    "Tomb-Sweeping Day": "tomb_sweeping_day",
    "Labor Day": "labour_day",
    "Dragon Boat Festival": "dragon_boat_festival",
    "Mid-Autumn Festival": "mid_autumn_festival",
    "National Day": "national_day",
}
"""The ``holidays`` package's English names, as chinesecalendar names the same holidays."""


@lru_cache(maxsize=64)
def statutory_holidays(year: int) -> dict[date, str]:
    """China's public holidays of ``year`` as the law's rules give them (in-lieu days included),
    without the published arrangement's bridging days and make-up working days."""
    out = {}
    for day, name in country_holidays("CN", years=year, language="en_US").items():
        base = name.removesuffix(" (observed)")
        if base.startswith("Day off"):  # a published arrangement's bridge day: not the law's rule
            continue
        out[day] = _STATUTORY_NAMES.get(base, base.lower().replace(" ", "_").replace("'", ""))
    return out


class OfficialCalendar:
    """Holidays and make-up working days by date; years given in config replace the package's."""

    def __init__(self, extra_years: Iterable[OfficialYear] = (), *, log_missing: bool = True) -> None:
        holidays = {day: _NAME_BY_VALUE.get(value, value) for day, value in cc.holidays.items()}
        workdays = {day: _NAME_BY_VALUE.get(value, value) for day, value in cc.workdays.items()}
        self.package_years = frozenset(day.year for day in holidays)
        extra = list(extra_years)
        for official in extra:
            for table in (holidays, workdays):
                for day in [d for d in table if d.year == official.year]:
                    del table[day]
        for official in extra:
            holidays.update(official.holiday_days())
            workdays.update(official.workday_days())
        self.config_years = frozenset(official.year for official in extra)
        self.holidays = holidays
        self.workdays = workdays
        self.years = self.package_years | self.config_years
        self.missing: set[int] = set()
        self.log_missing = log_missing

    def covered_years(self) -> str:
        """``2004-2026`` (chinesecalendar 1.11) plus any years added in config."""
        years = sorted(self.years)
        spans: list[str] = []
        start = prev = years[0]
        for year in [*years[1:], None]:
            if year is not None and year == prev + 1:
                prev = year
                continue
            spans.append(f"{start}" if start == prev else f"{start}-{prev}")
            if year is not None:
                start = prev = year
        return ", ".join(spans)

    def knows(self, day: date) -> bool:
        """Whether ``day``'s year has its published arrangement; a year without one is estimated
        from the statutory rules, and told once (logged when ``log_missing``)."""
        if day.year in self.years:
            return True
        if day.year not in self.missing:
            self.missing.add(day.year)
            if self.log_missing:
                log.warning("%s", self.missing_message(day.year))
        return False

    def estimated(self, day: date) -> bool:
        """True when ``day``'s holidays are estimated (no published arrangement for its year)."""
        return day.year not in self.years

    def missing_message(self, year: int) -> str:
        return (
            f"the official holiday arrangement for {year} is not known (known: {self.covered_years()}; "
            f"chinesecalendar {chinese_calendar.__version__}): {year}'s public holidays are estimated from the "
            f"statutory rules (holidays {holidays_version}: New Year, Spring Festival, Qingming, Labour Day, "
            "Dragon Boat, Mid-Autumn, National Day, and weekdays off in lieu), without the bridging days and "
            f"make-up working days that only the State Council's arrangement sets. Add that arrangement for {year} "
            "as a file under schedule.holiday_files."
        )

    def is_workday(self, day: date) -> bool:
        if not self.knows(day):
            return day.weekday() < 5 and day not in statutory_holidays(day.year)
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)

    def holiday(self, day: date) -> str | None:
        """The holiday ``day`` belongs to (``spring_festival``...), official or estimated, or None."""
        if not self.knows(day):
            return statutory_holidays(day.year).get(day)
        return self.holidays.get(day)

    def is_makeup_workday(self, day: date) -> bool:
        """Make-up working days exist only in a published arrangement: never estimated."""
        return self.knows(day) and day in self.workdays


@lru_cache(maxsize=256)
def _lunar_months(lunar_year: int) -> dict[int, tuple[date, int]]:
    """Regular (non-leap) month number -> (solar date of its first day, day count)."""
    months: dict[int, tuple[date, int]] = {}
    for month in LunarYear.fromYear(lunar_year).getMonthsInYear():
        number = month.getMonth()
        if number > 0:
            solar = Solar.fromJulianDay(month.getFirstJulianDay())
            months[number] = (date(solar.getYear(), solar.getMonth(), solar.getDay()), month.getDayCount())
    return months


def lunar_to_solar(lunar_year: int, month: int, day: int) -> date | None:
    """Solar date of a day of a regular lunar month, or None when the month has no such day (30th of
    a 29-day month)."""
    first, count = _lunar_months(lunar_year)[month]
    return first + timedelta(days=day - 1) if day <= count else None


def festival_date(name: str, lunar_year: int) -> date:
    """The festival of lunar year ``lunar_year``; 除夕 is that year's last day."""
    if name == NEW_YEARS_EVE:
        return spring_festival(lunar_year + 1) - timedelta(days=1)
    month, day = LUNAR_FESTIVALS[name]
    found = lunar_to_solar(lunar_year, month, day)
    assert found is not None, "every festival's day exists in every month"
    return found


def spring_festival(lunar_year: int) -> date:
    first, _ = _lunar_months(lunar_year)[1]
    return first


def point_date(point: LunarPoint, lunar_year: int) -> date | None:
    if point.festival is not None:
        base: date | None = festival_date(point.festival, lunar_year)
    else:
        base = lunar_to_solar(lunar_year, point.month, point.day)
    return None if base is None else base + timedelta(days=point.shift)
