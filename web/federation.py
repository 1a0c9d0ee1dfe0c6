"""A district daemon's side of the federation (lightctl.federation.district): its session with the
broker and the city, and its outbox. (The city's own API is web.city.)"""

from __future__ import annotations

from aiohttp import web

from lightctl.federation.district import DistrictNode
from lightctl.services.access import Permission
from web.context import DAEMON, error
from web.routing import Route


async def get_federation(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    node = next((s for s in daemon.services if isinstance(s, DistrictNode)), None)
    if node is None:
        return error(404, "this daemon is not federated (no federation: section with role: district)")
    waiting, last = await daemon.store.federation.outbox_counts()
    return web.json_response({**node.status(), "outbox_not_acknowledged": waiting, "outbox_last": last})


ROUTES = (
    Route("GET", "/api/v1/federation", get_federation, Permission.READ,
          "This district's Sparkplug session with the broker and the city, and its outbox",
          responses={"404": "not federated"}),
)
