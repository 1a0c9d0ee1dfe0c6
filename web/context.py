"""What every route module shares: the app's keys, JSON errors, who the caller is (and whether
they may), the body."""

from __future__ import annotations

import hmac
import html
import json
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import Any, Protocol
from urllib.parse import urlencode

from aiohttp import web
from yarl import URL

from lightctl.model.config import Config
from lightctl.runtime.commands import CommandRefused, NotFound, parse_until
from lightctl.runtime.daemon import Daemon
from lightctl.services.access import AccessDenied, Caller, Permission, require
from lightctl.services.reports.service import Reports
from lightctl.services.users.accounts import AccountError, UnknownAccount
from lightctl.services.users.auth import Authenticator, NotSignedIn
from lightctl.store import Store, StoreWriteFailed
from web.shared_status import SharedStatus

log = logging.getLogger("lightctl.web")



class Host(Protocol):
    """What the routes every app shares (sign-in, users and tokens, the audit, the console's
    files, the status page) ask of the daemon serving them: a district's
    (:class:`~lightctl.runtime.daemon.Daemon`) or the city's
    (:class:`~lightctl.federation.city.CityDaemon`)."""

    @property
    def config(self) -> Config: ...

    @property
    def tz(self) -> tzinfo: ...

    @property
    def store(self) -> Store: ...

    def now(self) -> datetime: ...

    def spawn(self, coro: Awaitable[Any], name: str) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def metrics(self) -> dict[str, Any]: ...


DAEMON = web.AppKey("daemon", Daemon)
"""A district daemon's app: the routes that need its engine, schedule and services."""
HOST: web.AppKey[Host] = web.AppKey("host")
REPORTS: web.AppKey[Callable[[], Reports]] = web.AppKey("reports")
"""The reports over the app's records: a district's own, or the city's copies of every district's."""
ACCESS = web.AppKey("access", Authenticator)
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
WEBSOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("websockets")
STATUS = web.AppKey("status", SharedStatus)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


CALLER = web.RequestKey("caller", Caller)
"""Who the request is, as :func:`authorize` found them (not set for a public route)."""
CSRF = web.RequestKey("csrf", str)
"""The CSRF token of the request's session (set for callers signed in with a session)."""
CLAIMED = web.RequestKey("claimed_user", str)
"""The user name a sign-in gave, for the audit of a refused one."""

SESSION_COOKIE = "lightctl_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing: not audited, no CSRF token needed."""


class Refused(Exception):
    """A request refused before its handler ran (401, 403) or by a sign-in (401, 429); rendered
    as JSON under /api/ and as a page elsewhere by :func:`errors_as_json`."""

    def __init__(self, status: int, message: str, *, forget_session: bool = False, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.forget_session = forget_session
        self.retry_after_s = retry_after_s


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
    except Refused as exc:
        return refusal(request, exc)
    except NotFound as exc:
        return error(404, str(exc))
    except (CommandRefused, AccountError) as exc:
        return error(400, str(exc))
    except AccessDenied as exc:
        return error(403, str(exc))
    except UnknownAccount as exc:
        return error(404, str(exc))
    except StoreWriteFailed as exc:
        return error(503, f"the store could not record this (see the store's health in the status): {exc}")


def refusal(request: web.Request, refused: Refused) -> web.Response:
    if request.path.startswith("/api/"):
        response = error(refused.status, refused.message)
    else:
        response = web.Response(
            status=refused.status, text=refusal_page(request, refused), content_type="text/html"
        )
    if refused.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="lightctl"'
    if refused.retry_after_s is not None:
        response.headers["Retry-After"] = str(math.ceil(refused.retry_after_s))
    if refused.forget_session:
        response.del_cookie(SESSION_COOKIE, path="/")
    return response


def refusal_page(request: web.Request, refused: Refused) -> str:
    """A page's refusal: 401 sends the browser to the sign-in page, coming back here after."""
    message = html.escape(refused.message)
    if refused.status != 401:
        return f"<!doctype html><meta charset='utf-8'><title>lightctl</title><p>{message}</p>"
    target = html.escape("/login?" + urlencode({"next": request.path_qs}), quote=True)
    return (
        f"<!doctype html><meta charset='utf-8'><title>lightctl: sign in</title>"
        f"<meta http-equiv='refresh' content='0; url={target}'><p>{message} <a href='{target}'>Sign in</a></p>"
    )


async def authorize(request: web.Request, permission: Permission) -> None:
    """Let the request through for ``permission``, noting who it is (:data:`CALLER`), or raise
    :class:`Refused`: 401 without valid credentials, 403 for a role that does not grant
    ``permission`` or a session's change without its CSRF token.

    Credentials, in this order: ``Authorization: Bearer`` (an API token or the local credential;
    a cookie beside it is ignored), then the session cookie. A session's request that changes
    state must carry the session's CSRF token in :data:`CSRF_HEADER`; a session's WebSocket must
    come from the daemon's own origin."""
    if permission is Permission.PUBLIC:
        return
    auth = request.app[ACCESS]
    header = request.headers.get("Authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    try:
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise NotSignedIn("the Authorization header must be 'Bearer <API token>'")
            caller = await auth.bearer(value.strip())
        elif cookie:
            found = await auth.session(cookie)
            caller = found.caller
            request[CSRF] = found.csrf_token
        else:
            raise NotSignedIn(
                "sign in first: a session (POST /api/v1/session) or an API token (Authorization: Bearer ...)"
            )
    except NotSignedIn as exc:
        raise Refused(401, str(exc), forget_session=header is None and bool(cookie)) from None
    request[CALLER] = caller
    if caller.via == "session":
        if request.method not in SAFE_METHODS:
            given = request.headers.get(CSRF_HEADER, "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, request[CSRF].encode()):
                raise Refused(403, f"a change made with a session needs its CSRF token in the {CSRF_HEADER} header "
                                   "(GET /api/v1/session gives it)")
        elif request.headers.get("Upgrade", "").lower() == "websocket" and not same_origin(request):
            raise Refused(403, "a WebSocket opened with a session must come from this daemon's own pages")
    try:
        require(caller, permission)
    except AccessDenied as exc:
        raise Refused(403, str(exc)) from None


def same_origin(request: web.Request) -> bool:
    """Whether the request's ``Origin`` (if it sends one) is the daemon's own."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        return URL(origin).origin() == request.url.origin()
    except ValueError:  # "null" (a sandboxed page), or not a URL at all
        return False


def caller_of(request: web.Request) -> Caller:
    """Who the request is (every route but a public one goes through :func:`authorize`)."""
    return request[CALLER]


def user_of(request: web.Request) -> str:
    """The caller's user name: what the records say did it."""
    return request[CALLER].name


MAX_ID = 2**63 - 1
"""Record ids are 64-bit integers: anything larger names nothing."""


def path_id(request: web.Request, key: str, what: str) -> int:
    """A record's id in the path: 400 when it is not a number, 404 when no record can have it."""
    raw = request.match_info[key]
    try:
        value = int(raw)
    except ValueError:
        raise CommandRefused(f"{what} id must be a number, got {raw[:40]!r}") from None
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no {what} #{value}")
    return value


async def body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:  # (not can_read_body: the audit has read it already)
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
