"""The WebSocket of events (``/api/v1/ws``), for a district daemon and the city daemon alike.

Each text frame is a JSON array of events (objects with a ``type``), the first frame
``[{"type": "hello", "status": ...}]``: events that come together are sent together, each
serialized once for every client. A client that cannot keep up (more than :data:`WS_BACKLOG`
events waiting) is not dropped: its backlog is replaced by one ``{"type": "overflow",
"dropped": N}`` event, telling it to fetch the state again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from lightctl.runtime.events import Published
from web.context import ACCESS, WEBSOCKETS, caller_of

WS_BACKLOG = 50_000
"""Events waiting for one client before its backlog is replaced by an ``overflow`` event."""
WS_COALESCE_S = 0.05
"""How long a client's sender waits for more events before sending a frame."""
WS_FRAME_EVENTS = 2_000
"""Events in one frame at most."""
WEBSOCKET_RECHECK_S = 30.0
"""How often an open WebSocket's caller is checked again (revoked, signed out, timed out)."""

Subscriber = Callable[[Published], None]


async def event_stream(
    request: web.Request, subscribers: list[Subscriber], status: Callable[[], dict[str, Any]]
) -> web.WebSocketResponse:
    """Serve one client the events published to ``subscribers``, after ``status()`` as hello."""
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    backlog: deque[Published] = deque()
    ready = asyncio.Event()

    def push(event: Published) -> None:
        if len(backlog) >= WS_BACKLOG:
            dropped = len(backlog)
            backlog.clear()
            backlog.append(Published({"type": "overflow", "dropped": dropped}))
        backlog.append(event)
        ready.set()

    subscribers.append(push)
    request.app[WEBSOCKETS].add(ws)

    async def sender() -> None:
        while True:
            await ready.wait()
            await asyncio.sleep(WS_COALESCE_S)  # let the events of one moment go in one frame
            ready.clear()
            while backlog:
                batch = [backlog.popleft() for _ in range(min(len(backlog), WS_FRAME_EVENTS))]
                await ws.send_str("[" + ",".join(event.text() for event in batch) + "]")

    async def still_allowed() -> None:
        """A session or token revoked (or timed out) while the socket is open closes it."""
        caller = caller_of(request)
        while True:
            await asyncio.sleep(WEBSOCKET_RECHECK_S)
            if not await request.app[ACCESS].still_valid(caller):
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"signed out")
                return

    send_task = asyncio.create_task(sender())
    check_task = asyncio.create_task(still_allowed())
    try:
        await ws.send_str("[" + Published({"type": "hello", "status": status()}).text() + "]")
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        send_task.cancel()
        check_task.cancel()
        await asyncio.gather(send_task, check_task, return_exceptions=True)
        subscribers.remove(push)
        request.app[WEBSOCKETS].discard(ws)
    return ws
