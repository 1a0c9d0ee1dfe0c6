"""Instants of events within an operating day (noon to noon, see schedules.model)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import sun

from lightctl.model.schedule import EVENING_EVENTS, ParsedEvent, clock_in_day

NOON = time(12, 0)


class EventError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Place:
    """Where sun events are computed: the installation, or a site with its own times."""

    name: str
    lat: float
    lon: float


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, NOON, tzinfo=zone)


def day_end(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), NOON, tzinfo=zone)


def operating_day(instant: datetime, zone: ZoneInfo) -> date:
    """The noon-to-noon day an instant belongs to."""
    local = instant.astimezone(zone)
    return local.date() if local.time() >= NOON else local.date() - timedelta(days=1)


def _clock(day: date, value: time, zone: ZoneInfo) -> datetime:
    offset = clock_in_day(value)
    return datetime.combine(day + timedelta(days=offset.days), value, tzinfo=zone)


@lru_cache(maxsize=8192)
def sun_times(lat: float, lon: float, day: date, zone: ZoneInfo) -> dict[str, datetime]:
    """astral's dawn, sunrise, noon, sunset, dusk (civil) for a calendar date, local time."""
    try:
        times: dict[str, datetime] = sun(Observer(lat, lon), date=day, tzinfo=zone)
    except ValueError as exc:  # the sun does not reach the depression that day (polar latitudes)
        raise EventError(f"no sun event at {lat},{lon} on {day}: {exc}") from None
    return times


def event_instant(event: ParsedEvent, day: date, place: Place, zone: ZoneInfo) -> datetime:
    """When ``event`` happens in operating day ``day``, clamped, and kept within the day."""
    if event.base == "clock":
        assert event.clock is not None
        return _clock(day, event.clock, zone)
    calendar_day = day if event.base in EVENING_EVENTS else day + timedelta(days=1)
    at = sun_times(place.lat, place.lon, calendar_day, zone)[event.base].replace(microsecond=0) + event.offset
    if event.not_before is not None:
        at = max(at, _clock(day, event.not_before, zone))
    if event.not_after is not None:
        at = min(at, _clock(day, event.not_after, zone))
    return min(max(at, day_start(day, zone)), day_end(day, zone))
