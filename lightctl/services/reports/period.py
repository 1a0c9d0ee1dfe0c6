"""A report's span: whole local days, ``first`` to ``last`` inclusive, in the installation's zone,
and how it splits into whole months and the days around them (the roll-ups' tables)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from lightctl.model.energy import LocalCalendar, month_after

MAX_DAYS = 3700
"""Ten years: a report longer than that is a mistake."""


class PeriodError(ValueError):
    """A span a report cannot take: it names what is wrong."""


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date
    zone: tzinfo

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise PeriodError(f"the period ends ({self.last}) before it begins ({self.first})")
        if (self.last - self.first).days >= MAX_DAYS:
            raise PeriodError(f"a report covers at most {MAX_DAYS} days")

    @classmethod
    def parse(cls, first: str | None, last: str | None, zone: tzinfo, today: date) -> Period:
        """From ``--from``/``--to`` (YYYY-MM-DD, both included; a month YYYY-MM is the whole
        month, and ``--from`` a month alone is that month); without them, the month so far."""
        start = _parse_day(first, "from", start=True) if first else today.replace(day=1)
        if last:
            end = _parse_day(last, "to", start=False)
        elif first and len(first) == 7:
            end = _parse_day(first, "from", start=False)
        else:
            end = max(start, today)
        return cls(start, end, zone)

    @classmethod
    def month(cls, text: str, zone: tzinfo) -> Period:
        """A calendar month, ``YYYY-MM``."""
        if len(text) != 7:
            raise PeriodError(f"--month {text!r}: expected a month YYYY-MM")
        first = _parse_day(text, "month", start=True)
        return cls(first, month_after(first) - timedelta(days=1), zone)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]

    def bounds(self, calendar: LocalCalendar) -> tuple[int, int]:
        """UTC ms of local midnight starting ``first`` and ending ``last``."""
        return calendar.day_start(self.first), calendar.day_start(self.last + timedelta(days=1))

    def split(self) -> tuple[list[date], list[date]]:
        """(the first days of the whole months inside, the other days), for the month and day tables."""
        months: list[date] = []
        days: list[date] = []
        day = self.first
        while day <= self.last:
            following = month_after(day)
            if day.day == 1 and following - timedelta(days=1) <= self.last:
                months.append(day)
                day = following
            else:
                days.append(day)
                day += timedelta(days=1)
        return months, days

    def as_json(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "timezone": str(self.zone)}

    def describe(self) -> str:
        return self.first.isoformat() if self.first == self.last else f"{self.first} to {self.last}"


def _parse_day(text: str, what: str, *, start: bool) -> date:
    try:
        if len(text) == 7:
            first = datetime.strptime(text, "%Y-%m").date()
            return first if start else month_after(first) - timedelta(days=1)
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"--{what} {text!r}: expected a date YYYY-MM-DD or a month YYYY-MM") from None
