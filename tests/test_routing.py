"""The route table: every route carries its permission and is in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from lightctl.services.access import Permission
from web import app as web_app
from web.routing import Route, openapi_document, register


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({})


def test_a_route_without_a_rule_cannot_be_registered() -> None:
    broken: Any = None
    with pytest.raises(TypeError, match="GET /api/v1/nothing has no permission"):
        register(web.Application(), [Route("GET", "/api/v1/nothing", _ok, broken, "no rule")])


def test_the_document_lists_every_api_route_with_its_permission() -> None:
    routes = [route for module in web_app.ROUTE_MODULES for route in module.ROUTES]
    document = openapi_document(routes)
    for route in routes:
        if route.path.startswith("/api/"):
            operation = document["paths"][route.path][route.method.lower()]
            assert operation["x-permission"] == route.permission.value
            assert ("security" in operation) == (route.permission is not Permission.PUBLIC)
