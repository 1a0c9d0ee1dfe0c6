"""API routes: status, controllers, scenes and the one switch, overrides, commands, metrics, the
WebSocket of events."""

from __future__ import annotations

from datetime import tzinfo

from aiohttp import web

from lightctl.model.desired import Released
from lightctl.runtime.commands import CommandRefused
from lightctl.services.access import Permission
from lightctl.store import Store
from web.context import (
    DAEMON,
    OPENAPI,
    STATUS,
    body,
    error,
    path_id,
    requested_until,
    user_of,
)
from web.events import event_stream
from web.routing import Route, path_parameter, query_parameter
from web.schemas import COMMAND_REPORT, OBJECTS, OVERRIDE_CLEARED


async def get_status(request: web.Request) -> web.Response:
    shared = request.app[STATUS].current()
    if request.headers.get("If-None-Match") == shared.etag:
        return web.Response(status=304, headers={"ETag": shared.etag})
    return web.Response(body=shared.body, content_type="application/json", charset="utf-8", headers={"ETag": shared.etag})


async def get_controller(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    cid = request.match_info["controller_id"]
    rt = daemon.engine.runtimes.get(cid)
    if rt is None:
        return error(404, f"unknown controller {cid!r}")
    reading = rt.reading
    channels = {}
    for ch in rt.info.controller.channels:
        want = rt.desired.get(ch.id)
        got = reading.channels.get(ch.id) if reading else None
        channels[ch.id] = {
            "name": ch.name,
            "luminaires": ch.luminaire_count,
            "rated_w": ch.rated_w,
            "desired": None if want is None else {"handed_back": True} if isinstance(want, Released)
            else {"on": want.on, "level": want.level},
            "control": "owner" if isinstance(want, Released) else "centre",
            "confirmed": ch.id in rt.confirmed and rt.confirmed[ch.id] == want,
            "reported": None
            if got is None
            else {"on": got.on, "level": got.level, "power_w": got.power_w, "faults": sorted(got.faults), "held_by": got.held_by,
                  "released": got.released},
        }
    return web.json_response(
        {
            "id": cid,
            "protocol": rt.info.controller.protocol,
            "site": rt.info.site.id,
            "link": rt.link.state.value,
            "last_error": rt.link.last_error,
            "power_w": reading.power_w if reading else None,
            "energy_kwh": reading.energy_kwh if reading else None,
            "measurements": dict(reading.measurements) if reading else {},
            "channels": channels,
        }
    )


async def get_scenes(request: web.Request) -> web.Response:
    scenes = request.app[DAEMON].scenes
    return web.json_response(
        [
            {"id": s.id, "name": s.name, "rules": [r.model_dump() for r in s.rules]}
            for s in (scenes.scenes[i] for i in scenes.ids())
        ]
    )


async def apply_scene(request: web.Request) -> web.Response:
    user = user_of(request)
    data = await body(request)
    daemon = request.app[DAEMON]
    target = data.get("target", "*")
    if not isinstance(target, str):
        raise CommandRefused("'target' must be a selector string")
    until = requested_until(data, daemon, default="next")
    report = await daemon.apply_scene(request.match_info["scene_id"], target, user=user, until=until)
    return web.json_response(report.as_json())


async def delete_override(request: web.Request) -> web.Response:
    user = user_of(request)
    override_id = path_id(request, "override_id", "override")
    report = await request.app[DAEMON].clear_override(override_id, user=user)
    return web.json_response({"cleared": override_id, "command": report.as_json() if report else None})


async def get_commands(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return await commands_of(request, daemon.store, daemon.tz)


async def commands_of(request: web.Request, store: Store, zone: tzinfo) -> web.Response:
    """The audit of commands, newest first (a district's, or the city's own)."""
    try:
        limit = max(1, min(500, int(request.query.get("limit", "50"))))
    except ValueError:
        return error(400, "limit must be a number")
    return web.json_response([c.as_json(zone) for c in await store.commands.recent(limit)])


async def get_command(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return await command_of(request, daemon.store, daemon.tz)


async def command_of(request: web.Request, store: Store, zone: tzinfo) -> web.Response:
    """One command with every controller's result."""
    command_id = path_id(request, "command_id", "command")
    command = await store.commands.get(command_id)
    if command is None:
        return error(404, f"no command #{command_id}")
    results = [r.as_json() for r in await store.commands.results(command_id)]
    return web.json_response({**command.as_json(zone), "results": results})


async def get_metrics(request: web.Request) -> web.Response:
    return web.json_response(request.app[DAEMON].metrics())


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


async def websocket(request: web.Request) -> web.WebSocketResponse:
    daemon = request.app[DAEMON]
    return await event_stream(request, daemon.subscribers, daemon.status)



UNTIL = {"type": "string", "default": "next", "description": "'next' scheduled transition, 'none', HH:MM or ISO 8601"}

ROUTES = (
    Route("GET", "/api/v1/status", get_status, Permission.READ, "Daemon, controllers, overrides and curtailments, the store's health"),
    Route("GET", "/api/v1/controllers/{controller_id}", get_controller, Permission.READ,
          "One controller: desired, confirmed and reported state per channel",
          parameters=[path_parameter("controller_id")], responses={"404": "unknown controller"}),
    Route("GET", "/api/v1/scenes", get_scenes, Permission.READ, "Scenes", response=OBJECTS),
    Route("POST", "/api/v1/scenes/{scene_id}/apply", apply_scene, Permission.OPERATE,
          "The one switch: a scene on a selector now, confirmed by read-back",
          parameters=[path_parameter("scene_id")],
          body={"type": "object", "properties": {"target": {"type": "string", "default": "*"}, "until": UNTIL}},
          response=COMMAND_REPORT, responses={"404": "no such scene"}),
    Route("DELETE", "/api/v1/overrides/{override_id}", delete_override, Permission.OPERATE,
          "End an override; the schedule takes over again", parameters=[path_parameter("override_id", "integer")],
          response=OVERRIDE_CLEARED, responses={"404": "no such override in force"}),
    Route("GET", "/api/v1/commands", get_commands, Permission.READ, "Audit of commands, newest first",
          parameters=[query_parameter("limit", "integer", "1-500, default 50")], response=OBJECTS,
          responses={"400": "limit is not a number"}),
    Route("GET", "/api/v1/commands/{command_id}", get_command, Permission.READ,
          "One command with every controller's result",
          parameters=[path_parameter("command_id", "integer")], responses={"400": "the id is not a number", "404": "no such command"}),
    Route("GET", "/api/v1/metrics", get_metrics, Permission.READ,
          "Control rate, LED share, lighting-on rate, power, energy"),
    Route("GET", "/api/v1/openapi.json", get_openapi, Permission.READ, "This document"),
    Route("GET", "/api/v1/ws", websocket, Permission.READ, "WebSocket: state, link, result, command and show events",
          responses={"400": "not a WebSocket upgrade request"}),
)
