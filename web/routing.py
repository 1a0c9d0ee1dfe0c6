"""The API's route table: every route with the permission it needs and its OpenAPI description.

A route is registered only through :func:`register`, which wraps its handler in the permission
check (``web.context.authorize``: who the caller is, and whether the one table of
``lightctl.services.access`` lets their role do it), and the OpenAPI document is generated from
the same table: a route cannot exist without a rule, nor be missing from the document.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from lightctl.services.access import Permission
from web.context import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, authorize

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
        if self.permission is not Permission.PUBLIC:
            responses["401"] = {"description": "not signed in: no session or API token, or one that has ended", "content": error}
            forbidden = "the caller's role does not grant this"
            if self.method not in SAFE_METHODS:
                forbidden += f", or a session's change came without its CSRF token ({CSRF_HEADER})"
            responses["403"] = {"description": forbidden, "content": error}
        if self.method not in SAFE_METHODS:
            responses["400"] = {"description": "refused: the message says what is wrong", "content": error}
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
        if self.permission is not Permission.PUBLIC:
            out["security"] = [{"bearer": []}, {"session": []}]
        return out


def path_parameter(name: str, kind: str = "string") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind == "integer":  # record ids: 64-bit, from 1
        schema.update(minimum=1, maximum=2**63 - 1)
    return {"name": name, "in": "path", "required": True, "schema": schema}


def query_parameter(name: str, kind: str = "string", description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
    if description:
        out["description"] = description
    return out


def guarded(route: Route) -> Handler:
    @functools.wraps(route.handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        await authorize(request, route.permission)
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
        "info": {"title": "lightctl", "version": "1", "description": API_DESCRIPTION},
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http", "scheme": "bearer",
                    "description": "an API token (lightctl token create), or on the daemon's machine the local credential",
                },
                "session": {
                    "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                    "description": f"the session POST /api/v1/session opens; every change also sends {CSRF_HEADER}",
                },
            },
        },
        "x-csrf-header": CSRF_HEADER,
        "paths": paths,
    }


API_DESCRIPTION = f"""Two Rivers Four Banks lighting control API.

Every route but signing in needs a caller: a session or an API token. Each route names the
permission it needs (x-permission); the roles grant them: admin everything, operator read and
operate, maintenance read and maintain, viewer read.

A browser signs in with POST /api/v1/session {{"user", "password"}}: the answer sets the cookie
{SESSION_COOKIE} (HttpOnly, SameSite=Strict, Secure over HTTPS) and gives the session's CSRF token
(also at GET /api/v1/session). Every request of the session that changes state (POST, PATCH,
PUT, DELETE) sends that token in the {CSRF_HEADER} header, or is refused (403). DELETE
/api/v1/session signs out. A session ends after a time unused and a longer time in all, and
when its user's password changes or the user is disabled: then 401, and the console signs in
again. Scripts send Authorization: Bearer <API token> instead, and need no CSRF token.

Every change, accepted or refused, is in the audit (GET /api/v1/audit, admin)."""
