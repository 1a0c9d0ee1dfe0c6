"""Administration: users, API tokens, sessions in force, and the audit (all ``ADMINISTER``).
A password or token the daemon generates is in the answer once and nowhere else."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from lightctl.model.times import to_ms
from lightctl.runtime.commands import CommandRefused
from lightctl.services.access import Permission
from lightctl.services.users import views
from web.context import ACCESS, HOST, body, caller_of, error, path_id
from web.routing import Route, path_parameter, query_parameter
from web.schemas import OBJECTS

AUDIT_LIMIT_MAX = 5000


async def list_users(request: web.Request) -> web.Response:
    zone = request.app[HOST].tz
    users = await request.app[ACCESS].accounts.users(caller_of(request))
    return web.json_response([u.as_json(zone) for u in users])


async def add_user(request: web.Request) -> web.Response:
    data = await body(request)
    accounts = request.app[ACCESS].accounts
    new = await accounts.add_user(
        caller_of(request), name=data.get("name"), role=data.get("role"), crew=data.get("crew"), password=data.get("password")
    )
    return web.json_response(views.user_added(new, request.app[HOST].tz))


async def update_user(request: web.Request) -> web.Response:
    data = await body(request)
    accounts = request.app[ACCESS].accounts
    user = await accounts.update(caller_of(request), request.match_info["name"], role=data.get("role"), crew=data.get("crew"))
    return web.json_response(views.user_changed(user, request.app[HOST].tz))


async def set_password(request: web.Request) -> web.Response:
    data = await body(request)
    generated, ended = await request.app[ACCESS].accounts.set_password(
        caller_of(request), request.match_info["name"], data.get("password")
    )
    return web.json_response(views.password_set(request.match_info["name"], generated, ended))


async def disable_user(request: web.Request) -> web.Response:
    sessions, tokens = await request.app[ACCESS].accounts.disable(caller_of(request), request.match_info["name"])
    return web.json_response(views.user_disabled(request.match_info["name"], sessions, tokens))


async def enable_user(request: web.Request) -> web.Response:
    await request.app[ACCESS].accounts.enable(caller_of(request), request.match_info["name"])
    return web.json_response(views.user_enabled(request.match_info["name"]))


async def list_tokens(request: web.Request) -> web.Response:
    zone = request.app[HOST].tz
    return web.json_response([t.as_json(zone) for t in await request.app[ACCESS].accounts.tokens(caller_of(request))])


async def create_token(request: web.Request) -> web.Response:
    data = await body(request)
    new = await request.app[ACCESS].accounts.create_token(
        caller_of(request), user=data.get("user"), label=data.get("label"), role=data.get("role"), days=data.get("days", "default")
    )
    return web.json_response(views.token_created(new, request.app[HOST].tz))


async def revoke_token(request: web.Request) -> web.Response:
    token_id = _number(request, "token_id", "token id")
    await request.app[ACCESS].accounts.revoke_token(caller_of(request), token_id)
    return web.json_response(views.token_revoked(token_id))


async def list_sessions(request: web.Request) -> web.Response:
    zone = request.app[HOST].tz
    return web.json_response([s.as_json(zone) for s in await request.app[ACCESS].accounts.sessions(caller_of(request))])


async def end_session(request: web.Request) -> web.Response:
    session_id = _number(request, "session_id", "session id")
    await request.app[ACCESS].accounts.end_session(caller_of(request), session_id)
    return web.json_response({"ended": session_id})


async def get_audit(request: web.Request) -> web.Response:
    host = request.app[HOST]
    query = request.query
    try:
        limit = int(query.get("limit", "200"))
    except ValueError:
        return error(400, "limit must be a number")
    if not 1 <= limit <= AUDIT_LIMIT_MAX:
        return error(400, f"limit must be 1-{AUDIT_LIMIT_MAX}")
    since = _instant(query.get("from"), "from", host.now())
    until = _instant(query.get("to"), "to", host.now())
    rows = await host.store.audit.query(user=query.get("user"), since=since, until=until, limit=limit)
    return web.json_response([r.as_json(host.tz) for r in rows])


def _number(request: web.Request, key: str, what: str) -> int:
    return path_id(request, key, what.removesuffix(" id"))


def _instant(text: str | None, name: str, now: datetime) -> int | None:
    """An ISO 8601 date (its midnight) or time; without an offset, in the installation's zone."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CommandRefused(f"'{name}' {text!r} is not an ISO 8601 date or time (e.g. 2026-12-01 or 2026-12-01T20:00)") from None
    return to_ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo))


USER = {"type": "object", "properties": {
    "name": {"type": "string"}, "role": {"type": "string"}, "crew": {"type": ["string", "null"]},
    "disabled": {"type": "boolean"}, "created_at": {"type": "string"}, "created_by": {"type": "string"},
    "password_changed_at": {"type": "string"}, "last_login_at": {"type": ["string", "null"]}}}
ROLE = {"type": "string", "enum": ["admin", "operator", "maintenance", "viewer"]}
NAME = [path_parameter("name")]

ROUTES = (
    Route("GET", "/api/v1/users", list_users, Permission.ADMINISTER, "Users, their roles and crews",
          response={"type": "array", "items": USER}),
    Route("POST", "/api/v1/users", add_user, Permission.ADMINISTER,
          "Add a user; without 'password' one is generated and given in this answer only",
          body={"type": "object", "required": ["name", "role"], "properties": {
              "name": {"type": "string"}, "role": ROLE,
              "crew": {"type": "string", "description": "required for maintenance, refused for the other roles"},
              "password": {"type": "string", "format": "password"}}}),
    Route("PATCH", "/api/v1/users/{name}", update_user, Permission.ADMINISTER,
          "Change a user's role or crew (in effect at their next request)", parameters=NAME,
          body={"type": "object", "properties": {"role": ROLE, "crew": {"type": "string"}}},
          responses={"404": "no such user"}),
    Route("POST", "/api/v1/users/{name}/password", set_password, Permission.ADMINISTER,
          "Set a user's password (generated when not given, and given in this answer only); their sessions end",
          parameters=NAME, body={"type": "object", "properties": {"password": {"type": "string", "format": "password"}}},
          responses={"404": "no such user"}),
    Route("POST", "/api/v1/users/{name}/disable", disable_user, Permission.ADMINISTER,
          "Disable a user: their sessions end and their API tokens are revoked", parameters=NAME,
          responses={"404": "no such user"}),
    Route("POST", "/api/v1/users/{name}/enable", enable_user, Permission.ADMINISTER, "Enable a disabled user",
          parameters=NAME, responses={"404": "no such user"}),
    Route("GET", "/api/v1/tokens", list_tokens, Permission.ADMINISTER, "API tokens (never their values)", response=OBJECTS),
    Route("POST", "/api/v1/tokens", create_token, Permission.ADMINISTER,
          "Create an API token for a user, scoped to a role their own covers; its value is in this answer only",
          body={"type": "object", "required": ["user", "label"], "properties": {
              "user": {"type": "string"}, "label": {"type": "string", "description": "what it is for"},
              "role": ROLE, "days": {"type": ["integer", "null"], "description": "expiry (default: access.token_days)"}}},
          responses={"404": "no such user"}),
    Route("DELETE", "/api/v1/tokens/{token_id}", revoke_token, Permission.ADMINISTER, "Revoke an API token",
          parameters=[path_parameter("token_id", "integer")], responses={"404": "no such token"}),
    Route("GET", "/api/v1/sessions", list_sessions, Permission.ADMINISTER, "Sessions in force, newest first", response=OBJECTS),
    Route("DELETE", "/api/v1/sessions/{session_id}", end_session, Permission.ADMINISTER, "End a session",
          parameters=[path_parameter("session_id", "integer")], responses={"404": "no such session"}),
    Route("GET", "/api/v1/audit", get_audit, Permission.ADMINISTER,
          "The audit of every change, accepted or refused, newest first (append-only)",
          parameters=[query_parameter("user", "string", "one user name"),
                      query_parameter("from", "string", "ISO 8601 date or time, inclusive (installation's zone)"),
                      query_parameter("to", "string", "ISO 8601 date or time, exclusive"),
                      query_parameter("limit", "integer", f"1-{AUDIT_LIMIT_MAX}, default 200")],
          response=OBJECTS, responses={"400": "a bad time or limit"}),
)
