"""The city daemon's API: the same paths and answers as a district daemon's (status, scenes and
the one switch, overrides, curtailments, shows, commands, metrics, sites, the WebSocket; faults and
work orders in web.city_cases), served from the districts' data (lightctl.federation.city), plus
the federation's own: the districts, and the events they sent. Sign-in, users and tokens, the
audit, the console and the status page are the routes every daemon serves (web.session,
web.accounts, web.console_static), on the city's own records.

Overrides and curtailments the city set are named by the id of the city command that set them
(``DELETE /api/v1/overrides/{command id}`` ends them in every district holding them).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from aiohttp import web

from lightctl.federation.city import CityDaemon, ShowNotRunning
from lightctl.model.times import iso_local
from lightctl.runtime.commands import CommandRefused, parse_until
from lightctl.runtime.credentials import first_password_path
from lightctl.services.access import Permission
from lightctl.services.users.accounts import Accounts
from lightctl.services.users.auth import Authenticator
from web import accounts, city_cases, console_static, core, reports, session
from web.app import new_app, serve_app
from web.city_context import CITY, city_of
from web.console_api import sites_json
from web.context import OPENAPI, REPORTS, body, error, user_of
from web.events import event_stream
from web.routing import Route, path_parameter, query_parameter


def requested_until(data: dict[str, Any], city: CityDaemon, *, default: str) -> str | None:
    """'next' (each district's next schedule transition) and 'none' stay as they are; HH:MM
    and ISO 8601 become one instant, the same for every district."""
    raw = data.get("until", default)
    if not isinstance(raw, str):
        raise CommandRefused("'until' must be a string: 'next', 'none', HH:MM or an ISO 8601 time")
    if raw in ("next", "none"):
        return raw
    try:
        until: datetime | None = parse_until(raw, city.now())
    except ValueError:
        raise CommandRefused(f"'until' {raw!r} is not 'next', 'none', HH:MM or an ISO 8601 time") from None
    if until is not None and until <= city.now():
        raise CommandRefused(f"'until' {until.isoformat()} is in the past")
    return None if until is None else until.isoformat()


def _target(data: dict[str, Any], *, required: bool, what: str) -> str:
    target = data.get("target", None if required else "*")
    if not isinstance(target, str) or not target:
        raise CommandRefused(f"'target' (a selector) is required for {what}" if required else "'target' must be a selector string")
    return target


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(city_of(request).status())


async def get_controller(request: web.Request) -> web.Response:
    cid = request.match_info["controller_id"]
    found = city_of(request).controller(cid)
    return error(404, f"unknown controller {cid!r} (no district was born with it)") if found is None else web.json_response(found)


async def get_scenes(request: web.Request) -> web.Response:
    return web.json_response(city_of(request).scenes())


async def apply_scene(request: web.Request) -> web.Response:
    user = user_of(request)
    data = await body(request)
    city = city_of(request)
    until = requested_until(data, city, default="next")
    report = await city.apply_scene(request.match_info["scene_id"], _target(data, required=False, what="a scene"), user=user, until=until)
    return web.json_response(report.as_json())


async def delete_override(request: web.Request) -> web.Response:
    user = user_of(request)
    try:
        command_id = int(request.match_info["override_id"])
    except ValueError:
        return error(400, "override id must be a number (the city command that set it)")
    report = await city_of(request).clear_override(command_id, user=user)
    return web.json_response({"cleared": command_id, "command": report.as_json() if report else None})


async def get_commands(request: web.Request) -> web.Response:
    city = city_of(request)
    return await core.commands_of(request, city.store, city.tz)


async def get_command(request: web.Request) -> web.Response:
    city = city_of(request)
    return await core.command_of(request, city.store, city.tz)


async def get_sites(request: web.Request) -> web.Response:
    return web.json_response(sites_json(city_of(request).mirror.inventory().config))


async def get_metrics(request: web.Request) -> web.Response:
    return web.json_response(city_of(request).metrics())


async def curtail(request: web.Request) -> web.Response:
    user = user_of(request)
    data = await body(request)
    city = city_of(request)
    level = data.get("level", 0)
    if not isinstance(level, int | float) or isinstance(level, bool):
        raise CommandRefused("'level' must be a number: 0 for off, or the percentage to dim to")
    until = requested_until(data, city, default="none")
    target = _target(data, required=True, what="a curtailment")
    return web.json_response(await city.curtail(target, float(level), user=user, until=until))


async def list_curtailments(request: web.Request) -> web.Response:
    city = city_of(request)
    return web.json_response({
        "city": [o for o in city.city_overrides() if o["kind"] == "curtail"],
        "districts": {d: [o for o in v["overrides"] if o["kind"] == "curtail"] for d, v in city.districts().items()},
    })


async def restore(request: web.Request) -> web.Response:
    user = user_of(request)
    raw = request.match_info.get("curtailment_id")
    try:
        ids = None if raw is None else [int(raw)]
    except ValueError:
        return error(400, "curtailment id must be a number (the city command that set it)")
    report = await city_of(request).restore(ids, user=user)
    return web.json_response({"restored": ids or "all", "command": report.as_json() if report else None})


async def list_shows(request: web.Request) -> web.Response:
    return web.json_response(city_of(request).shows())


async def start_show(request: web.Request) -> web.Response:
    user = user_of(request)
    data = await body(request)
    flags = {}
    for name in ("anyway", "clear_overrides"):
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise CommandRefused(f"'{name}' must be true or false")
        flags[name] = value
    return web.json_response(await city_of(request).start_show(request.match_info["show_id"], user=user, **flags))


async def show_status(request: web.Request) -> web.Response:
    return web.json_response(city_of(request).show_status())


async def stop_show(request: web.Request) -> web.Response:
    try:
        return web.json_response(await city_of(request).stop_show(user=user_of(request)))
    except ShowNotRunning as exc:
        return error(409, str(exc))


async def district_only_report(request: web.Request) -> web.Response:
    return error(400, "the city has no schedule or engine of its own: forecasts, curtailment what-ifs and inspections "
                      "on demand are each district's (ask its daemon); the city's reports are the tables over every district")


async def get_districts(request: web.Request) -> web.Response:
    city = city_of(request)
    return web.json_response({"federation": city.host.status(), "districts": city.districts()})


async def get_events(request: web.Request) -> web.Response:
    city = city_of(request)
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError:
        return error(400, "limit must be a number")
    rows = await city.store.federation.events(district=request.query.get("district"), kind=request.query.get("kind"), limit=limit)
    return web.json_response([
        {**r, "at": iso_local(_ms(r["at"]), city.tz, "milliseconds"), "received_at": iso_local(_ms(r["received_at"]), city.tz, "milliseconds")}
        for r in rows
    ])


def _ms(value: object) -> int:
    return int(value) if isinstance(value, int | float | str) else 0


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


async def websocket(request: web.Request) -> web.WebSocketResponse:
    city = city_of(request)
    return await event_stream(request, city.subscribers, city.status)


UNTIL = {"type": "string", "default": "next", "description": "'next' (each district's next transition), 'none', HH:MM or ISO 8601"}

ROUTES = (
    Route("GET", "/api/v1/status", get_status, Permission.READ,
          "Every district's controllers, the city's overrides, each district's state, the store's health"),
    Route("GET", "/api/v1/controllers/{controller_id}", get_controller, Permission.READ,
          "One controller as its district reports it", parameters=[path_parameter("controller_id")],
          responses={"404": "no district was born with it"}),
    Route("GET", "/api/v1/scenes", get_scenes, Permission.READ, "Scenes of every district, with the districts that have each"),
    Route("POST", "/api/v1/scenes/{scene_id}/apply", apply_scene, Permission.OPERATE,
          "The one switch over every district the selector reaches, each controller confirmed by its district",
          parameters=[path_parameter("scene_id")],
          body={"type": "object", "properties": {"target": {"type": "string", "default": "*"}, "until": UNTIL}}),
    Route("DELETE", "/api/v1/overrides/{override_id}", delete_override, Permission.OPERATE,
          "End a city override (by the id of the command that set it) in every district holding it",
          parameters=[path_parameter("override_id", "integer")]),
    Route("GET", "/api/v1/commands", get_commands, Permission.READ, "The city's commands, newest first",
          parameters=[query_parameter("limit", "integer", "1-500, default 50")]),
    Route("GET", "/api/v1/commands/{command_id}", get_command, Permission.READ,
          "One city command with every controller's result", parameters=[path_parameter("command_id", "integer")],
          responses={"404": "no such command"}),
    Route("GET", "/api/v1/metrics", get_metrics, Permission.READ, "The action plan's figures over every district"),
    Route("GET", "/api/v1/sites", get_sites, Permission.READ,
          "Every district's sites with their coordinates (WGS-84) and controllers, as the districts were born"),
    Route("POST", "/api/v1/curtailments", curtail, Permission.OPERATE,
          "Emergency load shedding on a selector, in every district it reaches",
          body={"type": "object", "required": ["target"], "properties": {
              "target": {"type": "string"}, "level": {"type": "number", "default": 0}, "until": UNTIL}}),
    Route("GET", "/api/v1/curtailments", list_curtailments, Permission.READ, "Curtailments in force: the city's, and each district's own"),
    Route("DELETE", "/api/v1/curtailments", restore, Permission.OPERATE, "Restore: end every curtailment of every district"),
    Route("DELETE", "/api/v1/curtailments/{curtailment_id}", restore, Permission.OPERATE,
          "Restore one city curtailment (by the id of the command that set it)",
          parameters=[path_parameter("curtailment_id", "integer")]),
    Route("GET", "/api/v1/shows", list_shows, Permission.READ, "Light shows of every district"),
    Route("POST", "/api/v1/shows/{show_id}/start", start_show, Permission.OPERATE,
          "Start a show in every district that has it; each district's answer",
          parameters=[path_parameter("show_id")],
          body={"type": "object", "properties": {"anyway": {"type": "boolean", "default": False},
                                                 "clear_overrides": {"type": "boolean", "default": False}}}),
    Route("GET", "/api/v1/shows/status", show_status, Permission.READ,
          "The show running in any district (or the last to change), and each district's"),
    Route("POST", "/api/v1/shows/stop", stop_show, Permission.OPERATE, "Stop the show in every district running one; each district's answer",
          responses={"409": "no show is running in any district"}),
    Route("GET", "/api/v1/federation/districts", get_districts, Permission.READ,
          "Each district: online, complete, births, controllers; the city's broker session"),
    Route("GET", "/api/v1/federation/events", get_events, Permission.READ, "Events the districts sent, newest first",
          parameters=[query_parameter("district"), query_parameter("kind"), query_parameter("limit", "integer", "1-1000, default 100")]),
    Route("GET", "/api/v1/openapi.json", get_openapi, Permission.READ, "This document"),
    Route("GET", "/api/v1/ws", websocket, Permission.READ, "WebSocket: districts, state, command and the districts' events"),
)
"""The city's own routes. (A scene's detail and explanation, and hand-backs, are each district's:
its scene book and owners.)"""

DISTRICT_ONLY = tuple(
    Route(r.method, r.path, district_only_report, r.permission, f"{r.summary}: a district's (the city answers 400, saying so)",
          parameters=r.parameters, responses={"400": "the city has no schedule or engine of its own"})
    for r in reports.ROUTES if r not in reports.TABLES
)
CITY_ROUTES = (
    *ROUTES, *city_cases.ROUTES, *reports.TABLES, *DISTRICT_ONLY, *session.ROUTES, *accounts.ROUTES, *console_static.ROUTES,
)
"""The city's API: its own routes, and those every daemon serves alike (sign-in, users and tokens,
the audit, the console and the status page)."""


def create_city_app(city: CityDaemon, *, local_credential: str | None) -> web.Application:
    """Callers as on a district: the city's own users and API tokens (in its database), or the
    local credential of the CLI on its machine; every change audited in the city's records."""
    user_accounts = Accounts(city.store, city.config.access, time.time, first_password_file=first_password_path(city.store.path))
    app = new_app(city, Authenticator(user_accounts, local_secret=local_credential), CITY_ROUTES)
    app[CITY] = city
    app[REPORTS] = city.reports
    return app


async def serve_city(city: CityDaemon, host: str, port: int, *, local_credential: str | None) -> web.AppRunner:
    return await serve_app(create_city_app(city, local_credential=local_credential), host, port)
