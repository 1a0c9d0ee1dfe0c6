"""API routes for the reports: rates, lighting-on, energy, forecast, work orders, the monthly
workbook's tables, the what-if of a curtailment, and a lighting-on inspection on demand. Every
report answers a table (``lightctl.services.reports.table``); the CLI prints, saves as CSV and
builds spreadsheets from exactly these answers."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from lightctl.runtime.commands import CommandRefused
from lightctl.runtime.reports import reports_of
from lightctl.services.access import Permission
from lightctl.services.reports.forecast import shed
from lightctl.services.reports.service import ReportError
from lightctl.services.reports.table import KINDS
from web.context import DAEMON, REPORTS, error
from web.routing import Route, query_parameter

TABLE: dict[str, Any] = {
    "type": "object",
    "required": ["name", "title", "columns", "rows", "notes"],
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "period": {"type": ["object", "null"], "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "timezone": {"type": "string"}}},
        "by": {"type": ["string", "null"]},
        "columns": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "title": {"type": "string"}, "kind": {"enum": sorted(KINDS)}},
            },
        },
        "rows": {"type": "array", "items": {"type": "object"}},
        "total": {"type": ["object", "null"]},
        "chart": {"type": ["object", "null"]},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}
PERIOD_PARAMETERS = (
    query_parameter("from", "string", "first day YYYY-MM-DD (or a month YYYY-MM), default the 1st of this month"),
    query_parameter("to", "string", "last day, included (default today)"),
    query_parameter("district", "string", "one district (id or name)"),
)


def _query(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return value if value else None


async def _table(request: web.Request, default_by: str, kind: str) -> web.Response:
    reports = request.app[REPORTS]()
    by = _query(request, "by") or default_by
    district = _query(request, "district")
    try:
        period = reports.period(_query(request, "from"), _query(request, "to"))
        if kind == "rates":
            table = await reports.rates(period, by, district)
        elif kind == "lighting-on":
            table = await reports.lighting_on(period, by, district)
        elif kind == "energy":
            table = await reports.energy(period, by, district, _query(request, "window"))
        else:
            table = await reports.workorders(period, by, district)
    except ReportError as exc:
        return error(400, str(exc))
    return web.json_response(table.as_json())


async def get_rates(request: web.Request) -> web.Response:
    return await _table(request, "district", "rates")


async def get_lighting_on(request: web.Request) -> web.Response:
    return await _table(request, "district", "lighting-on")


async def get_energy(request: web.Request) -> web.Response:
    return await _table(request, "district", "energy")


async def get_workorders(request: web.Request) -> web.Response:
    return await _table(request, "district", "workorders")


async def get_forecast(request: web.Request) -> web.Response:
    reports = reports_of(request.app[DAEMON]).reports
    try:
        nights = int(request.query.get("nights", "7"))
    except ValueError:
        return error(400, "nights must be a number")
    first_text = _query(request, "from")
    try:
        first = date.fromisoformat(first_text) if first_text else None
    except ValueError:
        return error(400, f"from {first_text!r}: expected the first night as YYYY-MM-DD")
    try:
        table = reports.forecast(first, nights, _query(request, "by") or "night", _query(request, "district"))
    except ReportError as exc:
        return error(400, str(exc))
    return web.json_response(table.as_json())


async def get_monthly(request: web.Request) -> web.Response:
    reports = request.app[REPORTS]()
    month = request.query.get("month")
    if not month:
        return error(400, "month is required: YYYY-MM")
    try:
        tables = await reports.monthly(month)
    except ReportError as exc:
        return error(400, str(exc))
    return web.json_response({"month": month, "installation": reports.config.installation.name, "tables": [t.as_json() for t in tables]})


async def get_curtail_what_if(request: web.Request) -> web.Response:
    """What a curtailment of a selector to a level would shed now, without applying it."""
    daemon = request.app[DAEMON]
    target = request.query.get("target")
    if not target:
        return error(400, "target (a selector) is required")
    try:
        cap = float(request.query.get("level", "0"))
    except ValueError:
        return error(400, "level must be a number (0 = off)")
    if not 0 <= cap < 100:
        return error(400, f"a curtailment level must be 0 (off) to 99 percent, got {cap:g}")
    try:
        selected = daemon.select(target)
    except CommandRefused as exc:
        return error(400, str(exc))
    before, _ = daemon.desired_now()
    after, _ = daemon.desired_now(daemon.curtail_layer(target, cap))
    rows = shed(daemon.inventory, selected, before, after, daemon.output_of, daemon.curve)
    return web.json_response(
        {
            "target": target,
            "level": cap,
            "channels": len(rows),
            "luminaires": sum(r.luminaires for r in rows),
            "shed_kw": round(sum(r.shed_w for r in rows) / 1000, 3),
            "shed": [
                {"controller": r.controller_id, "channel": r.channel_id, "luminaires": r.luminaires,
                 "level_before": r.level_before, "level_after": r.level_after, "shed_w": round(r.shed_w, 1)}
                for r in rows
            ],
        }
    )


async def post_inspection(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    inspection = await reports_of(daemon).inspect_now("operator", source="api")
    if inspection is None:
        return error(409, "nothing should be lit now: no inspection taken")
    should = sum(r.should_be_lit for r in inspection.classes)
    lit = sum(r.lit for r in inspection.classes)
    unseen = sum(r.not_reported for r in inspection.classes)
    return web.json_response(
        {
            "at": daemon.now().isoformat(timespec="seconds"),
            "should_be_lit": should,
            "lit": round(lit, 1),
            "not_reported": unseen,
            "lighting_on_rate": round(lit / (should - unseen), 4) if should > unseen else None,
        }
    )


BY = "site, district, region or area"
TABLES = (
    Route("GET", "/api/v1/reports/rates", get_rates, Permission.READ,
          "The action plan's rates per group, each with numerator, denominator, target and verdict",
          parameters=[*PERIOD_PARAMETERS, query_parameter("by", "string", BY)], response=TABLE, responses={"400": "a bad period, grouping or district"}),
    Route("GET", "/api/v1/reports/lighting-on", get_lighting_on, Permission.READ,
          "Lighting-on rate (亮灯率) from the stored inspections, per group and lighting class",
          parameters=[*PERIOD_PARAMETERS, query_parameter("by", "string", f"{BY}, day or month")], response=TABLE,
          responses={"400": "a bad period, grouping or district"}),
    Route("GET", "/api/v1/reports/energy", get_energy, Permission.READ,
          "Energy from the roll-ups: metered and estimated kWh, tariff periods, cost, savings, coal, CO2",
          parameters=[*PERIOD_PARAMETERS,
                      query_parameter("by", "string", f"{BY}, controller, channel, 15min, hour, day or month"),
                      query_parameter("window", "string", "only the days of a day set, e.g. set:spring-decorations")],
          response=TABLE, responses={"400": "a bad period, grouping, district or window"}),
    Route("GET", "/api/v1/reports/workorders", get_workorders, Permission.READ,
          "Work orders handled and closed on time per group",
          parameters=[*PERIOD_PARAMETERS, query_parameter("by", "string", BY)], response=TABLE,
          responses={"400": "a bad period, grouping or district"}),
    Route("GET", "/api/v1/reports/monthly", get_monthly, Permission.READ,
          "Every table of the bureau's monthly workbook",
          parameters=[query_parameter("month", "string", "YYYY-MM (required)")],
          response={"type": "object", "properties": {"month": {"type": "string"}, "installation": {"type": "string"},
                                                     "tables": {"type": "array", "items": TABLE}}},
          responses={"400": "a bad month"}),
)
"""The report tables, over whatever records the app serves (a district's or the city's)."""

ROUTES = (
    *TABLES,
    Route("GET", "/api/v1/reports/forecast", get_forecast, Permission.READ,
          "Energy and cost the schedule will use over the coming nights",
          parameters=[query_parameter("from", "string", "first night YYYY-MM-DD (default tonight)"),
                      query_parameter("nights", "integer", "1-400, default 7"),
                      query_parameter("by", "string", f"night, {BY}"),
                      query_parameter("district", "string", "one district (id or name)")],
          response=TABLE, responses={"400": "a bad night, count or grouping"}),
    Route("GET", "/api/v1/reports/curtail", get_curtail_what_if, Permission.READ,
          "What-if: the kW a curtailment of a selector would shed now (nothing is sent)",
          parameters=[query_parameter("target", "string", "selector (required)"), query_parameter("level", "number", "cap in percent, 0 = off")],
          responses={"400": "a bad selector or level"}),
    Route("POST", "/api/v1/reports/inspections", post_inspection, Permission.OPERATE,
          "Take and store a lighting-on inspection now", responses={"409": "nothing should be lit now"}),
)
"""A district's: the tables, and what needs its schedule and engine (forecast, what-if, inspection now)."""
