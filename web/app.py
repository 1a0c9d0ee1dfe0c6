"""The daemon's HTTP side: JSON API under /api/v1, a WebSocket of events, a plain status page.

The routes are the route modules' tables (web.routing): each route declares the permission it
needs and its OpenAPI description. Every change needs the API token (``Authorization: Bearer ...``,
kept in a 0600 file beside the database) and is audited with the operator's name (``X-Operator``).
Reads are open on the API's address, which is loopback by default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from lightctl.runtime.daemon import Daemon
from web import admin, core, federation, operations, telemetry
from web.context import DAEMON, OPENAPI, TOKEN, WEBSOCKETS, errors_as_json
from web.routing import Route, openapi_document, register

ROUTE_MODULES = (core, operations, telemetry, admin, federation)
"""Every module's ``ROUTES``: the API is exactly these (web.routing)."""


def new_app(token: str, routes: Iterable[Route]) -> web.Application:
    """An app serving ``routes`` (each behind its permission, all in its OpenAPI document),
    JSON errors, and WebSockets closed when it stops: a district's, or the city's (web.city)."""
    app = web.Application(middlewares=[errors_as_json], client_max_size=256 * 1024)
    app[TOKEN] = token
    app[WEBSOCKETS] = set()

    async def close_websockets(app: web.Application) -> AsyncIterator[None]:
        yield
        sockets = app[WEBSOCKETS]
        for ws in list(sockets):
            await ws.close()

    app.cleanup_ctx.append(close_websockets)
    app[OPENAPI] = openapi_document(register(app, routes))
    return app


def create_app(daemon: Daemon, token: str) -> web.Application:
    app = new_app(token, (route for module in ROUTE_MODULES for route in module.ROUTES))
    app[DAEMON] = daemon
    return app


async def serve(daemon: Daemon, host: str, port: int, token: str) -> web.AppRunner:
    """Start the API; the caller owns the loop and calls ``runner.cleanup()`` to stop."""
    return await serve_app(create_app(daemon, token), host, port)


async def serve_app(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port the API listens on (the config may ask for port 0: any free one)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the API is not listening")
