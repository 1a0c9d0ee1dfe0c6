"""``GET /metrics``: the daemon's figures in the Prometheus text format (lightctl.runtime.telemetry)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from lightctl.services.access import Permission
from web.context import DAEMON
from web.routing import Route


async def metrics(request: web.Request) -> web.Response:
    body = request.app[DAEMON].telemetry.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


ROUTES = (
    Route("GET", "/metrics", metrics, Permission.READ, "Prometheus metrics", content_type="text/plain"),
)
