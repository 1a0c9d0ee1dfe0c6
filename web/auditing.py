"""The audit of every request that changes state (any method but GET, HEAD and OPTIONS),
accepted or refused: who (the caller :func:`web.context.authorize` found, or the user name a
refused sign-in gave), from where, what (method, path, the body with its secrets left out) and
how it ended. A middleware outside every other, so that it sees each request's final status,
refusals before any handler and unknown routes among them."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from lightctl.services.users.audit import describe_body, result_of
from lightctl.store.audit import AuditEntry
from web.context import ACCESS, CALLER, CLAIMED, DAEMON, SAFE_METHODS, Handler

log = logging.getLogger("lightctl.audit")


@web.middleware
async def audit_changes(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        await record(request, exc.status, exc.text or exc.reason)
        raise
    except asyncio.CancelledError:  # the daemon is stopping: record it without holding the stop up
        request.app[DAEMON].spawn(record(request, 499, "cut short: the daemon was stopping"), "audit")
        raise
    except Exception:
        await record(request, 500, "internal error (the daemon's log has it)")
        raise
    await record(request, response.status, error_of(response))
    return response


def error_of(response: web.StreamResponse) -> str | None:
    if response.status < 400 or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    try:
        found = json.loads(response.body)
    except ValueError:
        return response.reason
    message = found.get("error") if isinstance(found, dict) else None
    return str(message)[:500] if message is not None else response.reason


async def record(request: web.Request, status: int, error: str | None) -> None:
    caller = request.get(CALLER)
    try:
        raw = await request.read() if request.body_exists else b""
        detail = describe_body(raw, request.content_type)
    except web.HTTPException:  # too large to read
        detail = json.dumps({"body": "too large"})
    entry = AuditEntry(
        at=request.app[ACCESS].accounts.now_ms(),
        user_name=caller.name if caller is not None else request.get(CLAIMED),
        role=caller.role.value if caller is not None else None,
        via=caller.via if caller is not None else "none",
        address=request.remote,
        method=request.method,
        path=request.path,
        detail=detail,
        status=status,
        result=result_of(status),
        error=error,
    )
    try:
        await request.app[DAEMON].store.audit.record(entry)
    except Exception as exc:
        log.error("the audit could not record %s %s by %s (%d): %s", entry.method, entry.path, entry.user_name, status, exc)
