"""The daemon's HTTP side: JSON API under /api/v1, a WebSocket of events, a plain status page.

Every change needs the API token (``Authorization: Bearer ...``, kept in a 0600 file beside the
database) and is audited with the operator's name (``X-Operator``). Reads are open on the API's
address, which is loopback by default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from lightctl.runtime.daemon import Daemon
from web import operations
from web.context import DAEMON, TOKEN, WEBSOCKETS, errors_as_json
from web.core import (
    apply_scene,
    delete_override,
    get_command,
    get_commands,
    get_controller,
    get_metrics,
    get_openapi,
    get_scenes,
    get_status,
    status_page,
    websocket,
)


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
    operations.add_routes(app, api)
    return app


async def serve(daemon: Daemon, host: str, port: int, token: str) -> web.AppRunner:
    """Start the API; the caller owns the loop and calls ``runner.cleanup()`` to stop."""
    runner = web.AppRunner(create_app(daemon, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port the API listens on (the config may ask for port 0: any free one)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the API is not listening")
