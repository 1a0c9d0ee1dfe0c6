"""Signing in and out: the sign-in page, the session (``/api/v1/session``) and a user's own
password change. The console signs in with JSON and keeps the CSRF token the answer gives; the
sign-in page posts a form and is sent on to where it was going."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from lightctl.model.times import iso_local
from lightctl.services.access import Caller, Permission
from lightctl.services.users.auth import Authenticator, SignInRefused
from web.context import (
    ACCESS,
    CALLER,
    CLAIMED,
    CSRF,
    CSRF_HEADER,
    HOST,
    SESSION_COOKIE,
    Refused,
    body,
    caller_of,
    error,
    same_origin,
)
from web.login_page import render_login_page, safe_next
from web.routing import Route

FORM = "application/x-www-form-urlencoded"


async def login_page(request: web.Request) -> web.Response:
    host = request.app[HOST]
    page = render_login_page(host.config.installation.name, request.query.get("next", "/"))
    return web.Response(text=page, content_type="text/html")


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = request.content_type == FORM
    if not same_origin(request):  # a sign-in posted from another site (login CSRF)
        raise Refused(403, "a sign-in must come from this daemon's own pages")
    data: dict[str, Any] = dict(await request.post()) if form else await body(request)
    name, password = data.get("user"), data.get("password")
    if isinstance(name, str):
        request[CLAIMED] = name[:64]
    auth = request.app[ACCESS]
    try:
        signed = await auth.sign_in(name, password, request.remote)
    except SignInRefused as exc:
        if not form:
            raise Refused(exc.status, str(exc), retry_after_s=exc.retry_after_s) from None
        page = render_login_page(request.app[HOST].config.installation.name, str(data.get("next", "/")), str(exc))
        response = web.Response(status=exc.status, text=page, content_type="text/html")
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
        return response
    request[CALLER] = signed.caller
    if form:
        answer = web.Response(status=303, headers={"Location": safe_next(str(data.get("next", "/")))})
    else:
        answer = web.json_response(await _session_json(request, signed.caller, signed.csrf_token))
    answer.set_cookie(
        SESSION_COOKIE, signed.secret, path="/", httponly=True, samesite="Strict", secure=request.secure,
        max_age=auth.absolute_ms // 1000,
    )
    return answer


async def get_session(request: web.Request) -> web.Response:
    return web.json_response(await _session_json(request, caller_of(request), request.get(CSRF)))


async def sign_out(request: web.Request) -> web.Response:
    caller = caller_of(request)
    if caller.session_id is None:
        return error(400, f"{caller.describe()} is not a session: nothing to sign out (an API token is revoked instead)")
    await request.app[ACCESS].sign_out(caller)
    response = web.json_response({"signed_out": caller.name})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def change_own_password(request: web.Request) -> web.Response:
    data = await body(request)
    accounts = request.app[ACCESS].accounts
    ended = await accounts.change_own_password(caller_of(request), data.get("current_password"), data.get("new_password"))
    response = web.json_response({"password_changed": True, "sessions_ended": ended})
    if caller_of(request).via == "session":
        response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def _session_json(request: web.Request, caller: Caller, csrf: str | None) -> dict[str, Any]:
    auth: Authenticator = request.app[ACCESS]
    zone = request.app[HOST].tz
    out: dict[str, Any] = {
        "user": caller.name,
        "role": caller.role.value,
        "crew": caller.crew,
        "via": caller.via,
        "permissions": sorted(p.value for p in caller.grants),
        "csrf_header": CSRF_HEADER,
        "csrf_token": csrf,
        "expires_at": None,
        "idle_timeout_s": None,
    }
    if caller.session_id is not None:
        session = await auth.store.sessions.get(caller.session_id)
        if session is not None:
            out["expires_at"] = iso_local(session.created_at + auth.absolute_ms, zone)
            out["idle_timeout_s"] = auth.idle_ms // 1000
    return out


SESSION_SCHEMA = {
    "type": "object",
    "properties": {
        "user": {"type": "string"},
        "role": {"type": "string", "enum": ["admin", "operator", "maintenance", "viewer"]},
        "crew": {"type": ["string", "null"]},
        "via": {"type": "string", "enum": ["session", "token", "local"]},
        "permissions": {"type": "array", "items": {"type": "string"}},
        "csrf_header": {"type": "string", "const": CSRF_HEADER},
        "csrf_token": {"type": ["string", "null"], "description": "send it in csrf_header with every change (sessions only)"},
        "expires_at": {"type": ["string", "null"], "description": "when the session ends however much it is used"},
        "idle_timeout_s": {"type": ["integer", "null"], "description": "the session ends when unused this long"},
    },
}

ROUTES = (
    Route("GET", "/login", login_page, Permission.PUBLIC, "The sign-in page", content_type="text/html"),
    Route("POST", "/api/v1/session", sign_in, Permission.PUBLIC,
          "Sign in: sets the session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) and gives the CSRF token; "
          "a form post (the sign-in page) is answered with a redirect to 'next'",
          body={"type": "object", "required": ["user", "password"], "properties": {
              "user": {"type": "string"}, "password": {"type": "string", "format": "password"}}},
          responses={"401": "wrong user name or password", "403": "posted from another site",
                     "429": "too many failed sign-ins for this user or address (Retry-After says how long)"},
          response=SESSION_SCHEMA),
    Route("GET", "/api/v1/session", get_session, Permission.READ,
          "Who the caller is, with the session's CSRF token and when it ends", response=SESSION_SCHEMA),
    Route("DELETE", "/api/v1/session", sign_out, Permission.READ, "Sign out: the session ends and its cookie is cleared"),
    Route("POST", "/api/v1/session/password", change_own_password, Permission.READ,
          "Change one's own password (the current one is required); every session of the user ends, this one too",
          body={"type": "object", "required": ["current_password", "new_password"], "properties": {
              "current_password": {"type": "string", "format": "password"},
              "new_password": {"type": "string", "format": "password"}}}),
)
