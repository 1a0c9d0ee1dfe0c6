"""What every route module shares: the app's keys, JSON errors, the caller's identity, the body."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from lightctl.runtime.commands import CommandRefused, NotFound, parse_until
from lightctl.runtime.daemon import Daemon
from lightctl.services.access import Permission
from lightctl.store import StoreWriteFailed

log = logging.getLogger("lightctl.web")

DAEMON = web.AppKey("daemon", Daemon)
TOKEN = web.AppKey("token", str)
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
WEBSOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("websockets")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or not request.path.startswith("/api/"):
            raise
        response = error(exc.status, exc.reason)
        for name in ("Allow", "WWW-Authenticate", "Retry-After"):  # what the status means needs them
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except NotFound as exc:
        return error(404, str(exc))
    except CommandRefused as exc:
        return error(400, str(exc))
    except StoreWriteFailed as exc:
        return error(503, f"the store could not record this (see the store's health in the status): {exc}")


USER = web.RequestKey("user", str)
"""The request's key for the caller's name, set by :func:`authorize`."""


def authorize(request: web.Request, permission: Permission) -> None:
    """Let the request through for ``permission`` or raise HTTP 401, and note who it is."""
    if permission is Permission.READ:
        request[USER] = "viewer"
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), request.app[TOKEN]):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "a valid API token is required for changes (Authorization: Bearer ...)"}),
            content_type="application/json",
        )
    # Percent-encoded by the console (a browser sends only Latin-1 in headers; names are Chinese).
    name = unquote(request.headers.get("X-Operator", "")).strip()[:64]
    request[USER] = name or "operator"


def user_of(request: web.Request) -> str:
    """The caller, as :func:`authorize` found it (every route goes through it)."""
    return request[USER]


async def body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise CommandRefused(f"request body is not valid JSON: {exc.msg} at character {exc.pos}") from None
    except UnicodeDecodeError as exc:
        raise CommandRefused(f"request body is not UTF-8 text (byte {exc.start}): send JSON") from None
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
