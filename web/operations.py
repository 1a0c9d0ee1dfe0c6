"""API routes for scene details and explanations, light shows, hand-back and emergency curtailment."""

from __future__ import annotations

from aiohttp import web

from lightctl.model.values import ChannelState
from lightctl.reconcile.explain import explain
from lightctl.runtime.commands import CommandRefused
from lightctl.runtime.showrunner import ShowHeld, ShowRefused, UnknownShow
from lightctl.services.access import Permission
from scenes.model import UnknownScene
from web.context import DAEMON, body, error, path_id, requested_until, user_of
from web.routing import Route, path_parameter, query_parameter
from web.schemas import COMMAND_REPORT, CURTAIL_REPORT, OBJECTS, RESTORED, SHOW_HELD, SHOW_RUN, SHOW_STATUS


async def get_scene(request: web.Request) -> web.Response:
    scenes = request.app[DAEMON].scenes
    try:
        scene = scenes.get(request.match_info["scene_id"])
        states = scenes.desired(scene.id)
    except UnknownScene as exc:
        return error(404, str(exc))
    on = [s for s in states.values() if isinstance(s, ChannelState) and s.on]
    return web.json_response(
        {
            "id": scene.id,
            "name": scene.name,
            "base": scene.base,
            "rules": [r.model_dump(mode="json") for r in scene.rules],
            "channels": len(states),
            "channels_on": len(on),
            "channels_handed_back": sum(1 for s in states.values() if not isinstance(s, ChannelState)),
            "controllers": len({key[0] for key in states}),
        }
    )


async def explain_scene(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    try:
        plan = explain(daemon.scenes, request.match_info["scene_id"], request.query.get("target", "*"))
    except UnknownScene as exc:
        return error(404, str(exc))
    except ValueError as exc:
        return error(400, str(exc))
    return web.json_response(plan)


async def list_shows(request: web.Request) -> web.Response:
    runner = request.app[DAEMON].shows
    return web.json_response(runner.shows())


async def start_show(request: web.Request) -> web.Response:
    """Start a show. When operators hold some of its channels the answer is 409 naming each hold,
    unless the body says ``anyway`` or ``clear_overrides``; a show that would reach nothing is 409
    whatever the body says."""
    user = user_of(request)
    data = await body(request)
    flags = {}
    for name in ("anyway", "clear_overrides"):
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise CommandRefused(f"'{name}' must be true or false")
        flags[name] = value
    try:
        run = await request.app[DAEMON].shows.start(request.match_info["show_id"], user=user, **flags)
    except ShowHeld as exc:
        return web.json_response(exc.as_json(), status=409)
    except UnknownShow as exc:
        return error(404, str(exc))
    except ShowRefused as exc:
        return error(409, str(exc))
    return web.json_response(run.as_json())


async def stop_show(request: web.Request) -> web.Response:
    user = user_of(request)
    try:
        run = await request.app[DAEMON].shows.stop(user=user)
    except ShowRefused as exc:
        return error(409, str(exc))
    return web.json_response(run.as_json())


async def show_status(request: web.Request) -> web.Response:
    runner = request.app[DAEMON].shows
    current = runner.current or runner.last
    return web.json_response({"run": current.as_json() if current else None})


async def curtail(request: web.Request) -> web.Response:
    user = user_of(request)
    data = await body(request)
    daemon = request.app[DAEMON]
    target, level = data.get("target"), data.get("level", 0)
    if not isinstance(target, str) or not target:
        raise CommandRefused("'target' (a selector) is required for a curtailment")
    if not isinstance(level, int | float) or isinstance(level, bool):
        raise CommandRefused("'level' must be a number: 0 for off, or the percentage to dim to")
    until = requested_until(data, daemon, default="none")
    report = await daemon.curtail(target, float(level), user=user, until=until)
    return web.json_response(report.as_json())


async def handback(request: web.Request) -> web.Response:
    """Hand a selector's channels back to their owners (an override; see lightctl.inventory.handback)."""
    user = user_of(request)
    data = await body(request)
    daemon = request.app[DAEMON]
    target = data.get("target")
    if not isinstance(target, str) or not target:
        raise CommandRefused("'target' (a selector) is required for a hand-back")
    until = requested_until(data, daemon, default="next")
    report = await daemon.handback(target, user=user, until=until)
    return web.json_response(report.as_json())


async def list_curtailments(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.json_response([c.as_json(daemon.tz) for c in await daemon.store.layers.active_curtailments()])


async def restore(request: web.Request) -> web.Response:
    user = user_of(request)
    ids = None if "curtailment_id" not in request.match_info else [path_id(request, "curtailment_id", "curtailment")]
    report = await request.app[DAEMON].restore(ids, user=user)
    return web.json_response({"restored": ids or "all", "command": report.as_json() if report else None})


UNTIL = {"type": "string", "description": "'next' scheduled transition, 'none', HH:MM or ISO 8601"}

ROUTES = (
    Route("GET", "/api/v1/scenes/{scene_id}", get_scene, Permission.READ, "A scene: rules, base, channels reached",
          parameters=[path_parameter("scene_id")], responses={"404": "unknown scene"}),
    Route("GET", "/api/v1/scenes/{scene_id}/explain", explain_scene, Permission.READ,
          "The operations a scene compiles to, per controller, without sending",
          parameters=[path_parameter("scene_id"), query_parameter("target", "string", "selector, default *")],
          responses={"400": "bad selector", "404": "unknown scene"}, response=OBJECTS),
    Route("GET", "/api/v1/shows", list_shows, Permission.READ, "Configured light shows", response=OBJECTS),
    Route("POST", "/api/v1/shows/{show_id}/start", start_show, Permission.OPERATE,
          "Start a show; 409 names the overrides and curtailments that hold some or all of its channels",
          parameters=[path_parameter("show_id")],
          body={"type": "object", "properties": {
              "anyway": {"type": "boolean", "default": False, "description": "start although some channels are held"},
              "clear_overrides": {"type": "boolean", "default": False, "description": "end the overrides on its channels first"}}},
          responses={"404": "no such show",
                     "409": ("operators hold some or all of its channels (each hold, and the options), or a show is running", SHOW_HELD)},
          response=SHOW_RUN),
    Route("POST", "/api/v1/shows/stop", stop_show, Permission.OPERATE, "Stop the running show", response=SHOW_RUN,
          responses={"409": "no show is running"}),
    Route("GET", "/api/v1/shows/status", show_status, Permission.READ, "The running (or last) show and its progress",
          response=SHOW_STATUS),
    Route("POST", "/api/v1/handback", handback, Permission.OPERATE,
          "Hand a selector's channels back to their owners' control (BACnet: the centre's priority relinquished), "
          "confirmed by read-back; any later scene on them takes them back",
          body={"type": "object", "required": ["target"], "properties": {"target": {"type": "string"}, "until": UNTIL}},
          response=COMMAND_REPORT),
    Route("POST", "/api/v1/curtailments", curtail, Permission.OPERATE,
          "Emergency load shedding on a selector: off (level 0) or dimmed to at most level %",
          body={"type": "object", "required": ["target"], "properties": {
              "target": {"type": "string"}, "level": {"type": "number", "default": 0}, "until": UNTIL}},
          response=CURTAIL_REPORT),
    Route("GET", "/api/v1/curtailments", list_curtailments, Permission.READ, "Curtailments in force, with what they shed",
          response=OBJECTS),
    Route("DELETE", "/api/v1/curtailments", restore, Permission.OPERATE, "Restore: end every curtailment", response=RESTORED,
          responses={"404": "no curtailment is active"}),
    Route("DELETE", "/api/v1/curtailments/{curtailment_id}", restore, Permission.OPERATE, "Restore one curtailment",
          parameters=[path_parameter("curtailment_id", "integer")], response=RESTORED,
          responses={"404": "no such curtailment in force"}),
)
