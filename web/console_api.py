"""API routes the console's map and calendar need, and any other client may use: the sites with
their coordinates, and the schedule's nights of a month (calendar, lunar festivals, transitions,
shows) as ``lightctl schedule preview`` computes them."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from lightctl.model.config import Config
from lightctl.model.schedule import FESTIVALS
from lightctl.model.times import iso_local
from lightctl.runtime.daemon import Daemon
from lightctl.services.access import Permission
from schedules.calendars import festival_date
from schedules.engine import Schedule, Transition
from schedules.events import day_start
from schedules.preview import nights
from web.context import DAEMON, error
from web.routing import Route, query_parameter
from web.schemas import STRING_OR_NULL, Schema

MAX_DAYS = 62
"""The longest span one request of nights may ask for (two months)."""

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


async def get_sites(request: web.Request) -> web.Response:
    return web.json_response(sites_json(request.app[DAEMON].config))


def sites_json(config: Config) -> dict[str, Any]:
    """The map's places of an installation (a district's config, or the city's union of births)."""
    installation = config.installation
    return (
        {
            "installation": {
                "name": installation.name,
                "name_en": installation.name_en,
                "location": installation.location.model_dump(),
            },
            "districts": [
                {
                    "id": district.id,
                    "name": district.name,
                    "name_en": district.name_en,
                    "sites": [
                        {
                            "id": site.id,
                            "name": site.name,
                            "name_en": site.name_en,
                            "location": site.location.model_dump(),
                            "tags": list(site.tags),
                            "controllers": [
                                {"id": c.id, "name": c.name, "protocol": c.protocol, "channels": len(c.channels)}
                                for c in site.controllers
                            ],
                            "legacy_circuits": len(site.legacy),
                        }
                        for site in district.sites
                    ],
                }
                for district in config.districts
            ],
        }
    )


def requested_span(query: Any, today: date) -> tuple[date, int]:
    """``month=YYYY-MM`` (that month), or ``from=YYYY-MM-DD`` and/or ``days`` (1-62; from tonight
    when ``from`` is not given), or else this month. ``today`` is the operating day now."""
    month = query.get("month")
    if month is not None:
        found = _MONTH.match(month)
        if not found or not 1 <= int(found.group(2)) <= 12:
            raise ValueError(f"month {month!r} is not YYYY-MM")
        first = date(int(found.group(1)), int(found.group(2)), 1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, (following - first).days
    raw_from, raw_days = query.get("from"), query.get("days")
    if raw_from is None and raw_days is None:
        return requested_span({"month": f"{today:%Y-%m}"}, today)
    if raw_from is None:
        first = today
    else:
        try:
            first = date.fromisoformat(raw_from)
        except ValueError:
            raise ValueError(f"from {raw_from!r} is not YYYY-MM-DD") from None
    raw_days = raw_days or "1"
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= MAX_DAYS:
        raise ValueError(f"days must be 1 to {MAX_DAYS}")
    return first, int(raw_days)


def festivals_between(first: date, last: date) -> dict[date, list[str]]:
    """Lunar festivals (lightctl.model.schedule.FESTIVALS) whose day falls in ``first..last``."""
    out: dict[date, list[str]] = {}
    for lunar_year in range(first.year - 1, last.year + 1):
        for name in FESTIVALS:
            day = festival_date(name, lunar_year)
            if first <= day <= last:
                out.setdefault(day, []).append(name)
    return out


def night_json(
    daemon: Daemon, schedule: Schedule | None, first: date, days: int
) -> list[dict[str, Any]]:
    zone = daemon.tz
    last = first + timedelta(days=days - 1)
    festivals = festivals_between(first, last)
    by_night: dict[date, list[Transition]] = {}
    if schedule is not None:
        for row in schedule.transitions(day_start(first, zone), day_start(last + timedelta(days=1), zone)):
            by_night.setdefault((row.at.astimezone(zone) - timedelta(hours=12)).date(), []).append(row)
    shows = daemon.config.shows
    out = []
    for night in nights(schedule, first, days) if schedule is not None else []:
        rows = by_night.get(night.day, [])
        started = {row.entry for row in rows if row.action == "start"}
        out.append(
            {
                "date": night.day.isoformat(),
                "workday": night.workday,
                "holiday": night.holiday,
                "makeup_workday": night.makeup_workday,
                "estimated": night.estimated,
                "festivals": festivals.get(night.day, []),
                "shows": [s.id for s in shows if started & set(s.schedule_entries)],
                "transitions": [
                    {"at": iso_local(row.at, zone), "action": row.action, "scene": row.scene, "target": row.target,
                     "priority": row.priority, "entry": row.entry, "event": row.event}
                    for row in rows
                ],
            }
        )
    return out


async def get_nights(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    now = daemon.now()
    tonight = (now - timedelta(hours=12)).date()  # operating days run noon to noon
    try:
        first, days = requested_span(request.query, tonight)
    except ValueError as exc:
        return error(400, str(exc))
    schedule = daemon.schedule if isinstance(daemon.schedule, Schedule) else None  # a test may give another source
    upcoming = daemon.next_transition()
    warnings = [] if schedule is None else schedule.calendar_warnings(first, first + timedelta(days=days - 1))
    return web.json_response(
        {
            "from": first.isoformat(),
            "days": days,
            "today": tonight.isoformat(),
            "next_change": None if upcoming is None else iso_local(upcoming, daemon.tz),
            "calendar_warnings": warnings,
            "nights": night_json(daemon, schedule, first, days),
        }
    )


SITES: Schema = {
    "type": "object",
    "required": ["installation", "districts"],
    "properties": {
        "installation": {"type": "object"},
        "districts": {"type": "array", "items": {"type": "object", "required": ["id", "name", "name_en", "sites"]}},
    },
}

TRANSITION: Schema = {
    "type": "object",
    "properties": {
        "at": {"type": "string"}, "action": {"enum": ["start", "end"]}, "scene": {"type": "string"},
        "target": {"type": "string"}, "priority": {"type": "integer"}, "entry": {"type": "string"},
        "event": {"type": "string"},
    },
}

NIGHTS: Schema = {
    "type": "object",
    "required": ["from", "days", "today", "next_change", "nights"],
    "properties": {
        "from": {"type": "string"},
        "days": {"type": "integer"},
        "today": {"type": "string"},
        "next_change": STRING_OR_NULL,
        "calendar_warnings": {"type": "array", "items": {"type": "string"}},
        "nights": {"type": "array", "items": {
            "type": "object",
            "required": ["date", "workday", "holiday", "makeup_workday", "estimated", "festivals", "shows", "transitions"],
            "properties": {
                "date": {"type": "string"},
                "workday": {"type": "boolean"},
                "holiday": STRING_OR_NULL,
                "makeup_workday": {"type": "boolean"},
                "estimated": {"type": "boolean"},
                "festivals": {"type": "array", "items": {"type": "string"}},
                "shows": {"type": "array", "items": {"type": "string"}},
                "transitions": {"type": "array", "items": TRANSITION},
            },
        }},
    },
}

ROUTES = (
    Route("GET", "/api/v1/sites", get_sites, Permission.READ,
          "Districts and sites with their coordinates (WGS-84) and controllers: the map's places", response=SITES),
    Route("GET", "/api/v1/schedule/nights", get_nights, Permission.READ,
          "The schedule's operating nights (noon to noon): working, rest or holiday, make-up working day, estimated, "
          "lunar festivals, the shows the schedule starts, and every transition; the next change",
          parameters=[
              query_parameter("month", "string", "YYYY-MM: that month's nights (the default: this month)"),
              query_parameter("from", "string", "YYYY-MM-DD: the first night (default tonight when days is given)"),
              query_parameter("days", "integer", f"1-{MAX_DAYS} nights from 'from' (default 1)"),
          ],
          responses={"400": "month, from or days malformed"}, response=NIGHTS),
)
