"""The CLI's client of a running daemon's API (aiohttp, with a timeout on every request).

Credentials, first found: ``--token``, the ``LIGHTCTL_TOKEN`` environment variable (kept out of
the process list and the shell's history), and, only for the daemon the config names, the local
credential beside its database, which the daemon's own OS user can read. The local credential
is never sent to another address than the one that daemon wrote in it. HTTPS: the configured daemon is checked
against its own certificate (daemon.tls_cert); another one against the system's authorities or
``--cacert``.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

from lightctl.cli.common import TOKEN_VARIABLE, ApiError
from lightctl.model.installation import DaemonSettings
from lightctl.runtime.credentials import LocalCredential, LocalCredentialError, read_local_credential

REQUEST_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Target:
    """Which daemon, with what credential."""

    url: str
    credential: str | None
    ssl: ssl.SSLContext | None
    why_no_credential: str | None = None


def target(settings: DaemonSettings, *, url: str | None, token: str | None, cacert: str | None) -> Target:
    """The daemon to ask and the credential to show it. Without ``--url``: the daemon the config
    names, at the address its local credential says it listens on (``run --port``); the local
    credential goes to that address only."""
    given = token or os.environ.get(TOKEN_VARIABLE) or None
    try:
        local: LocalCredential | None = read_local_credential(settings.database)
        why_not = None
    except LocalCredentialError as exc:
        local, why_not = None, f"{exc}; or give --token or {TOKEN_VARIABLE}"
    own = (local.url if local is not None else None) or settings.local_url()
    address = own if url is None else url.rstrip("/")
    ours = address == own
    context = None
    if ours and settings.tls_cert is not None and settings.tls:
        # Our own daemon: its certificate is the one trust anchor; the name it was made for may
        # not be the loopback address we reach it by.
        context = ssl.create_default_context(cafile=settings.tls_cert)
        context.check_hostname = False
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    elif cacert is not None:
        context = ssl.create_default_context(cafile=cacert)
    if given is not None:
        return Target(address, given, context)
    if not ours:
        return Target(address, None, context, f"give --token or {TOKEN_VARIABLE} for {address}")
    if local is None:
        return Target(address, None, context, why_not)
    return Target(address, local.secret, context)


async def call(where: Target, method: str, path: str, *, json: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {where.credential}"} if where.credential else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session,
            session.request(method, where.url + path, json=json, headers=headers, ssl=where.ssl or True) as response,
        ):
            data = await response.json(content_type=None)
            if response.status >= 400:
                message = data.get("error") if isinstance(data, dict) else None
                message = message or f"HTTP {response.status}"
                if response.status == 401 and where.why_no_credential:
                    message = f"{message} ({where.why_no_credential})"
                raise ApiError(message, response.status)
            return data
    except aiohttp.ClientConnectionError as exc:
        raise ApiError(f"cannot reach the daemon at {where.url}: {exc}") from None
    except TimeoutError:
        raise ApiError(f"the daemon at {where.url} did not answer in {REQUEST_TIMEOUT_S:g} s") from None
