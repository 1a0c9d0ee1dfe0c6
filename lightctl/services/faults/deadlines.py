"""Work-order deadlines by severity: hours on the clock, or working days of the official PRC
calendar (the one the schedules use: published holidays and make-up working days, the
statutory rules for a year not yet published).

``N working days`` is N x 24 hours of working-day time from the filing: time on a weekend or a
public holiday does not run, time on a make-up working day (调休, a Saturday or Sunday worked)
does. Filed on Friday at 10:00 with 3 working days and a normal weekend: due Wednesday 10:00;
filed on a Saturday: due at the end of Wednesday. A deadline that counted days of a year whose
arrangement is not published says so (``estimated``), naming the year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from lightctl.model.faults import Deadline
from schedules.calendars import OfficialCalendar

SEARCH_DAYS = 400
"""No run of non-working days is this long: a deadline past it is a bug, not a holiday."""


@dataclass(frozen=True, slots=True)
class Due:
    at: datetime
    basis: str
    estimated: bool


def due(filed: datetime, deadline: Deadline, calendar: OfficialCalendar) -> Due:
    """When a case filed at ``filed`` (aware, in the installation's zone) is due."""
    if filed.tzinfo is None:
        raise ValueError("a filing time needs its zone")
    if deadline.hours is not None:
        return Due(filed + timedelta(hours=deadline.hours), f"{deadline.hours:g} h from filing", False)
    assert deadline.working_days is not None
    zone = filed.tzinfo
    remaining = timedelta(days=deadline.working_days)
    day = filed.date()
    makeup: list[date] = []
    skipped: list[date] = []
    estimated: set[int] = set()
    for _ in range(SEARCH_DAYS):
        start_of_day = datetime.combine(day, time(0), tzinfo=zone)
        end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        if calendar.estimated(day):
            estimated.add(day.year)
        if calendar.is_workday(day):
            if calendar.is_makeup_workday(day):
                makeup.append(day)
            start = max(filed, start_of_day)
            available = end_of_day - start
            if available >= remaining:
                at = start + remaining
                return Due(at, _basis(deadline.working_days, makeup, skipped, estimated), bool(estimated))
            remaining -= available
        elif day.weekday() < 5:
            skipped.append(day)
        day += timedelta(days=1)
    raise RuntimeError(f"no {deadline.working_days} working days within {SEARCH_DAYS} days of {filed.isoformat()}")


def _basis(days: int, makeup: list[date], skipped: list[date], estimated: set[int]) -> str:
    text = f"{days} working day{'s' if days != 1 else ''} of the official calendar"
    if skipped:
        text += f"; weekday holidays skipped: {_dates(skipped)}"
    if makeup:
        text += f"; make-up working days counted: {_dates(makeup)}"
    if estimated:
        years = ", ".join(str(y) for y in sorted(estimated))
        text += (
            f"; {years} holidays estimated from the statutory rules (no published arrangement, no make-up days): "
            "the deadline may move when the year is loaded"
        )
    return text


def _dates(days: list[date]) -> str:
    return ", ".join(d.isoformat() for d in days)
