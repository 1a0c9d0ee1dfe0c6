"""The daemon's HTTP side: JSON API under /api/v1, a WebSocket of events, the operators' console
(web/console, served by web.console_static), a plain status page at /status and the sign-in page.

The routes are the route modules' tables (web.routing): each route declares the permission it
needs and its OpenAPI description, and is let through only for a caller whose role grants it
(web.context.authorize: a session, an API token, or the local credential). Every change,
accepted or refused, is audited (web.auditing). HTTPS when the config gives a certificate.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from aiohttp import web

from lightctl.runtime.credentials import first_password_path
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.reports import reports_of
from lightctl.services.users.accounts import Accounts
from lightctl.services.users.auth import Authenticator
from web import (
    accounts,
    admin,
    console_api,
    console_static,
    core,
    faults,
    federation,
    operations,
    reports,
    session,
    telemetry,
)
from web.auditing import audit_changes
from web.context import ACCESS, DAEMON, HOST, OPENAPI, REPORTS, STATUS, WEBSOCKETS, Host, errors_as_json
from web.routing import Route, openapi_document, register
from web.shared_status import SharedStatus

ROUTE_MODULES = (
    core, operations, telemetry, admin, session, accounts, faults, reports, federation, console_api, console_static,
)
"""Every module's ``ROUTES``: the API is exactly these (web.routing)."""


class TlsSetupError(ValueError):
    """The configured certificate or key cannot be used; the message names the file."""


def new_app(host: Host, access: Authenticator, routes: Iterable[Route]) -> web.Application:
    """An app serving ``routes`` for ``host`` (each behind its permission, all in its OpenAPI
    document), JSON errors, every change audited in the host's records, and WebSockets closed when
    it stops: a district daemon's, or the city's (web.city)."""
    app = web.Application(middlewares=[audit_changes, errors_as_json], client_max_size=256 * 1024)
    app[HOST] = host
    app[ACCESS] = access
    app[WEBSOCKETS] = set()

    async def close_websockets(app: web.Application) -> AsyncIterator[None]:
        yield
        sockets = app[WEBSOCKETS]
        for ws in list(sockets):
            await ws.close()

    app.cleanup_ctx.append(close_websockets)
    app[OPENAPI] = openapi_document(register(app, routes))
    return app


def create_app(daemon: Daemon, *, local_credential: str | None) -> web.Application:
    """``local_credential``: the value of the file beside the database that the CLI on this
    machine presents (None: no local caller)."""
    user_accounts = Accounts(
        daemon.store, daemon.config.access, daemon.clock, first_password_file=first_password_path(daemon.store.path)
    )
    access = Authenticator(user_accounts, local_secret=local_credential)
    app = new_app(daemon, access, (route for module in ROUTE_MODULES for route in module.ROUTES))
    app[DAEMON] = daemon
    app[STATUS] = SharedStatus(daemon)
    app[REPORTS] = lambda: reports_of(daemon).reports
    return app


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context for the API: TLS 1.2 at least, the certificate chain and its key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(Path(cert), Path(key))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"daemon.tls_cert {cert} / daemon.tls_key {key}: cannot be used: {exc}") from None
    return context


async def serve(
    daemon: Daemon, host: str, port: int, *, local_credential: str | None, tls: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Start the API (HTTPS with ``tls``); the caller owns the loop and calls ``runner.cleanup()``."""
    return await serve_app(create_app(daemon, local_credential=local_credential), host, port, tls)


async def serve_app(app: web.Application, host: str, port: int, tls: ssl.SSLContext | None = None) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port the API listens on (the config may ask for port 0: any free one)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the API is not listening")
