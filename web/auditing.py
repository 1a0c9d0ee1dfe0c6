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
from web.context import ACCESS, CALLER, CLAIMED, HOST, SAFE_METHODS, Handler

log = logging.getLogger("lightctl.audit")


@web.middleware
async def audit_changes(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS:
        return await handler(request)
    pending = await begin(request)  # recorded before it acts: a crash leaves it 'interrupted'
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        await finish(request, pending, exc.status, exc.text or exc.reason)
        raise
    except asyncio.CancelledError:  # the daemon is stopping: record it without holding the stop up
        request.app[HOST].spawn(finish(request, pending, 499, "cut short: the daemon was stopping"), "audit")
        raise
    except Exception:
        await finish(request, pending, 500, "internal error (the daemon's log has it)")
        raise
    await finish(request, pending, response.status, error_of(response))
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


async def begin(request: web.Request) -> int | None:
    """The request recorded as pending (its caller is not known yet: the outcome's row part fills
    who it was); None when the store cannot record, which is logged."""
    try:
        return await request.app[HOST].store.audit.begin(await entry_of(request, 0, None))
    except Exception as exc:
        log.error("the audit could not record %s %s before handling it: %s", request.method, request.path, exc)
        return None


async def finish(request: web.Request, pending: int | None, status: int, error: str | None) -> None:
    """The outcome: on the pending row, with the caller as authentication found it."""
    if pending is None:
        await record(request, status, error)
        return
    entry = await entry_of(request, status, error)
    try:
        await request.app[HOST].store.audit.finish(pending, entry, status, result_of(status), error)
    except Exception as exc:
        log.error("the audit could not record the outcome of %s %s (%d): %s", request.method, request.path, status, exc)


STREAMED_TYPES = ("image/",)
"""Media types whose bodies handlers stream (``POST /api/v1/photos``): never read by the audit."""


async def entry_of(request: web.Request, status: int, error: str | None) -> AuditEntry:
    caller = request.get(CALLER)
    detail: str | None
    try:
        if request.body_exists and request.content_type.startswith(STREAMED_TYPES):
            # a photo: its handler streams it (past client_max_size); reading it here would take
            # the bytes the handler needs. Its size is what the audit keeps.
            detail = json.dumps({"body": f"{request.content_length} bytes of {request.content_type}"})
        else:
            raw = await request.read() if request.body_exists else b""
            detail = describe_body(raw, request.content_type)
    except web.HTTPException:  # too large to read
        detail = json.dumps({"body": "too large"})
    return AuditEntry(
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


async def record(request: web.Request, status: int, error: str | None) -> None:
    """One row with its outcome (the pending row could not be written)."""
    entry = await entry_of(request, status, error)
    try:
        await request.app[HOST].store.audit.record(entry)
    except Exception as exc:
        log.error("the audit could not record %s %s by %s (%d): %s", entry.method, entry.path, entry.user_name, status, exc)
