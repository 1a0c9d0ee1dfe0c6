"""API routes for scene details and explanations, light shows, hand-back and emergency curtailment."""

from __future__ import annotations

from aiohttp import web

from lightctl.model.values import ChannelState
from lightctl.reconcile.explain import explain
from lightctl.runtime.daemon import CommandRefused
from lightctl.runtime.showrunner import ShowRefused
from scenes.model import UnknownScene
from web.context import DAEMON, body, error, operator, requested_until


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
    user = operator(request)
    try:
        run = await request.app[DAEMON].shows.start(request.match_info["show_id"], user=user)
    except ShowRefused as exc:
        return error(400, str(exc))
    return web.json_response(run.as_json())


async def stop_show(request: web.Request) -> web.Response:
    user = operator(request)
    try:
        run = await request.app[DAEMON].shows.stop(user=user)
    except ShowRefused as exc:
        return error(400, str(exc))
    return web.json_response(run.as_json())


async def show_status(request: web.Request) -> web.Response:
    runner = request.app[DAEMON].shows
    current = runner.current or runner.last
    return web.json_response({"run": current.as_json() if current else None})


async def curtail(request: web.Request) -> web.Response:
    user = operator(request)
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
    user = operator(request)
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
    user = operator(request)
    raw = request.match_info.get("curtailment_id")
    try:
        ids = None if raw is None else [int(raw)]
    except ValueError:
        return error(400, "curtailment id must be a number")
    report = await request.app[DAEMON].restore(ids, user=user)
    return web.json_response({"restored": ids or "all", "command": report.as_json() if report else None})


def add_routes(app: web.Application, api: str) -> None:
    app.router.add_get(f"{api}/scenes/{{scene_id}}", get_scene)
    app.router.add_get(f"{api}/scenes/{{scene_id}}/explain", explain_scene)
    app.router.add_get(f"{api}/shows", list_shows)
    app.router.add_post(f"{api}/shows/{{show_id}}/start", start_show)
    app.router.add_post(f"{api}/shows/stop", stop_show)
    app.router.add_get(f"{api}/shows/status", show_status)
    app.router.add_post(f"{api}/handback", handback)
    app.router.add_post(f"{api}/curtailments", curtail)
    app.router.add_get(f"{api}/curtailments", list_curtailments)
    app.router.add_delete(f"{api}/curtailments", restore)
    app.router.add_delete(f"{api}/curtailments/{{curtailment_id}}", restore)
