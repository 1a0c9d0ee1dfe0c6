"""The API's route table: every route with the permission it needs and its OpenAPI description.

A route is registered only through :func:`register`, which wraps its handler in the permission
check, and the OpenAPI document is generated from the same table: a route cannot exist without a
rule, nor be missing from the document.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from lightctl.services.access import Permission
from web.context import authorize

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    permission: Permission
    summary: str
    parameters: Sequence[Mapping[str, Any]] = ()
    body: Mapping[str, Any] | None = None
    """JSON schema of the request body, if it takes one."""
    responses: Mapping[str, str | tuple[str, Mapping[str, Any]]] = field(default_factory=dict)
    """Statuses besides 200 (and the refusals every change can get), with what they mean, and
    their body's schema when it is not the usual ``{"error": ...}``."""
    response: Mapping[str, Any] = field(default_factory=lambda: JSON_OBJECT)
    """JSON schema of the 200 response."""
    content_type: str = "application/json"

    def operation(self) -> dict[str, Any]:
        responses: dict[str, Any] = {"200": {"description": "OK", "content": {self.content_type: {"schema": dict(self.response)}}}}
        if self.method == "GET" and self.path.endswith("/ws"):
            responses = {"101": {"description": "switching to the WebSocket protocol"}}
        error = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}
        if self.permission is not Permission.READ:
            responses["400"] = {"description": "refused: the message says what is wrong", "content": error}
            responses["401"] = {"description": "credentials missing or wrong", "content": error}
            responses["503"] = {"description": "the store could not record it (its health is in /api/v1/status)", "content": error}
        for status, meaning in self.responses.items():
            if isinstance(meaning, tuple):
                description, schema = meaning
                responses[status] = {"description": description, "content": {"application/json": {"schema": dict(schema)}}}
            else:
                responses[status] = {"description": meaning, "content": error}
        out: dict[str, Any] = {"summary": self.summary, "responses": responses, "x-permission": self.permission.value}
        if self.parameters:
            out["parameters"] = [dict(p) for p in self.parameters]
        if self.body is not None:
            out["requestBody"] = {"content": {"application/json": {"schema": dict(self.body)}}}
        if self.permission is not Permission.READ:
            out["security"] = [{"token": []}]
        return out


def path_parameter(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def query_parameter(name: str, kind: str = "string", description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
    if description:
        out["description"] = description
    return out


def guarded(route: Route) -> Handler:
    @functools.wraps(route.handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        authorize(request, route.permission)
        return await route.handler(request)

    return handle


def register(app: web.Application, routes: Iterable[Route]) -> list[Route]:
    """Add every route to the app, each behind its permission check; returns them, for the
    OpenAPI document."""
    table = list(routes)
    for route in table:
        if not isinstance(route.permission, Permission):  # a route without a rule is a bug
            raise TypeError(f"route {route.method} {route.path} has no permission")
        app.router.add_route(route.method, route.path, guarded(route))
    return table


def openapi_document(routes: Iterable[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not route.path.startswith("/api/"):
            continue
        paths.setdefault(route.path, {})[route.method.lower()] = route.operation()
    return {
        "openapi": "3.1.0",
        "info": {"title": "lightctl", "version": "1", "description": "Two Rivers Four Banks lighting control API"},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
