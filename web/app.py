"""The daemon's HTTP side: JSON API under /api/v1, a WebSocket of events, a plain status page.

Every change needs the API token (``Authorization: Bearer ...``, kept in a 0600 file beside the
database) and is audited with the operator's name (``X-Operator``). Reads are open on the API's
address, which is loopback by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from lightctl.daemon import CommandRefused, Daemon, parse_until
from lightctl.handback import Released
from lightctl.metrics import installation_metrics
from web.openapi import OPENAPI
from web.status_page import render_status_page

log = logging.getLogger("lightctl.web")

DAEMON = web.AppKey("daemon", Daemon)
TOKEN = web.AppKey("token", str)
WEBSOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("websockets")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_path(database: str) -> Path:
    return Path(database).resolve().parent / "api-token"


def load_or_create_token(database: str) -> str:
    path = token_path(database)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or not request.path.startswith("/api/"):
            raise
        return error(exc.status, exc.reason)
    except CommandRefused as exc:
        return error(400, str(exc))


def operator(request: web.Request) -> str:
    """The authenticated operator's name, or an HTTP 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), request.app[TOKEN]):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "a valid API token is required for changes (Authorization: Bearer ...)"}),
            content_type="application/json",
        )
    name = request.headers.get("X-Operator", "").strip()[:64]
    return name or "operator"


async def body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise CommandRefused(f"request body is not valid JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(data, dict):
        raise CommandRefused("request body must be a JSON object")
    return data


def requested_until(data: dict[str, Any], daemon: Daemon, *, default: str) -> datetime | None:
    """A request's ``until``: 'next' (the schedule's next transition), 'none' (until cleared),
    HH:MM or an ISO 8601 time; anything else is refused, naming the field."""
    raw = data.get("until", default)
    if not isinstance(raw, str):
        raise CommandRefused(f"'until' must be a string: {UNTIL_FORMS}")
    if raw == "none":
        return None
    if raw == "next":
        return daemon.next_transition()
    try:
        return parse_until(raw, daemon.now())
    except ValueError:
        raise CommandRefused(f"'until' {raw!r} is not one of {UNTIL_FORMS}") from None


UNTIL_FORMS = "'next' (the schedule's next transition), 'none' (until cleared), HH:MM or an ISO 8601 time"


# --------------------------------------------------------------------------- handlers


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[DAEMON].status())


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
    user = operator(request)
    data = await body(request)
    daemon = request.app[DAEMON]
    target = data.get("target", "*")
    if not isinstance(target, str):
        raise CommandRefused("'target' must be a selector string")
    until = requested_until(data, daemon, default="next")
    report = await daemon.apply_scene(request.match_info["scene_id"], target, user=user, until=until)
    return web.json_response(report.as_json())


async def delete_override(request: web.Request) -> web.Response:
    user = operator(request)
    try:
        override_id = int(request.match_info["override_id"])
    except ValueError:
        return error(400, "override id must be a number")
    report = await request.app[DAEMON].clear_override(override_id, user=user)
    return web.json_response({"cleared": override_id, "command": report.as_json() if report else None})


async def get_commands(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(500, int(request.query.get("limit", "50"))))
    except ValueError:
        return error(400, "limit must be a number")
    return web.json_response(await request.app[DAEMON].store.commands(limit))


async def get_command(request: web.Request) -> web.Response:
    store = request.app[DAEMON].store
    try:
        command_id = int(request.match_info["command_id"])
    except ValueError:
        return error(400, "command id must be a number")
    rows = await store.read("SELECT * FROM commands WHERE id=?", [command_id])
    if not rows:
        return error(404, f"no command #{command_id}")
    return web.json_response({**rows[0], "results": await store.command_results(command_id)})


async def get_metrics(request: web.Request) -> web.Response:
    return web.json_response(installation_metrics(request.app[DAEMON]))


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

    def push(message: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(message)

    daemon = request.app[DAEMON]
    daemon.subscribers.append(push)
    request.app[WEBSOCKETS].add(ws)

    async def sender() -> None:
        while True:
            await ws.send_json(await queue.get())

    send_task = asyncio.create_task(sender())
    try:
        await ws.send_json({"type": "hello", "status": daemon.status()})
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        send_task.cancel()
        await asyncio.gather(send_task, return_exceptions=True)
        daemon.subscribers.remove(push)
        request.app[WEBSOCKETS].discard(ws)
    return ws


async def status_page(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.Response(text=render_status_page(daemon.status(), installation_metrics(daemon)), content_type="text/html")


# --------------------------------------------------------------------------- the app


def create_app(daemon: Daemon, token: str) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=256 * 1024)
    app[DAEMON] = daemon
    app[TOKEN] = token
    app[WEBSOCKETS] = set()

    async def close_websockets(app: web.Application) -> AsyncIterator[None]:
        yield
        sockets = app[WEBSOCKETS]
        for ws in list(sockets):
            await ws.close()

    app.cleanup_ctx.append(close_websockets)
    app.router.add_get("/", status_page)
    api = "/api/v1"
    app.router.add_get(f"{api}/status", get_status)
    app.router.add_get(f"{api}/controllers/{{controller_id}}", get_controller)
    app.router.add_get(f"{api}/scenes", get_scenes)
    app.router.add_post(f"{api}/scenes/{{scene_id}}/apply", apply_scene)
    app.router.add_delete(f"{api}/overrides/{{override_id}}", delete_override)
    app.router.add_get(f"{api}/commands", get_commands)
    app.router.add_get(f"{api}/commands/{{command_id}}", get_command)
    app.router.add_get(f"{api}/metrics", get_metrics)
    app.router.add_get(f"{api}/openapi.json", get_openapi)
    app.router.add_get(f"{api}/ws", websocket)
    from web.operations import add_routes  # its handlers use this module's keys and helpers

    add_routes(app, api)
    return app


async def serve(daemon: Daemon, host: str, port: int, token: str) -> web.AppRunner:
    """Start the API; the caller owns the loop and calls ``runner.cleanup()`` to stop."""
    runner = web.AppRunner(create_app(daemon, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("the API is not listening")
