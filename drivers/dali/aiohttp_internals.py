"""The aiohttp internal the DALI WebSocket transport relies on, in one place: written for aiohttp
3.14.5 (:data:`WRITTEN_FOR`).

A show's beat puts every line's first frame on the wire before ``fire`` returns, and aiohttp sends
a WebSocket message only by awaiting ``send_str``. In aiohttp 3.14 that coroutine writes an
uncompressed frame to the transport synchronously (``WebSocketWriter.send_frame`` ->
``_write_websocket_frame``) and awaits only afterwards, for the transport to drain when its buffer
is above the limit; a compressed frame may first wait for a lock. :func:`send_now` therefore steps
the coroutine once, on a socket without compression, and drops the drain wait (the gateway's events
pace the line). There is no public synchronous send to use instead.

:func:`why_not` turns this off, with one log line, for an aiohttp not named in :data:`WRITTEN_FOR`
or a compressed socket: the transport then declines the beat's fire and the cue goes through
``apply``. tests/test_dali_aiohttp_internals.py is the contract: it fails, never skips, when aiohttp
moves it.
"""

from __future__ import annotations

import logging
from importlib.metadata import version

import aiohttp

log = logging.getLogger(__name__)

WRITTEN_FOR = ("3.14.5",)
"""aiohttp versions whose WebSocket writer this module was checked against (by the contract test)."""
INSTALLED = version("aiohttp")
_reported: set[str] = set()


def why_not(ws: aiohttp.ClientWebSocketResponse) -> str | None:
    """None if :func:`send_now` may be used on ``ws``; else why not (logged once per reason)."""
    if INSTALLED not in WRITTEN_FOR:
        reason: str | None = f"aiohttp {INSTALLED}, this module was written for {', '.join(WRITTEN_FOR)}"
    elif ws.compress:
        reason = "the WebSocket is compressed (a compressed frame may wait for a lock before it is written)"
    else:
        reason = None
    if reason is not None and reason not in _reported:
        _reported.add(reason)
        log.warning("DALI WebSocket frames are not sent at a show's beat (%s): its cues go through apply()", reason)
    return reason


def send_now(ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
    """Write ``text`` as one uncompressed text frame before returning (only where :func:`why_not`
    said None). Raises what aiohttp raises for a closed socket."""
    sending = ws.send_str(text)
    try:
        sending.send(None)
    except StopIteration:
        return
    sending.close()  # suspended after the write, waiting for the transport to drain


__all__ = ["INSTALLED", "WRITTEN_FOR", "send_now", "why_not"]
