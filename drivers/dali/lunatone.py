"""Multi-line DALI-2 gateway with a WebSocket JSON raw-frame API (Lunatone DALI-2 IoT style).

One WebSocket per gateway. The gateway greets with ``{"type": "info", "data": {"descriptor":
{"lines": N, ...}}}``. A frame is sent as::

    {"type": "daliFrame", "data": {"line": 0, "numberOfBits": 16, "daliData": [a, b],
     "mode": {"sendTwice": false, "waitForAnswer": true, "priority": 2}}}

and the gateway answers with events: ``daliFrame`` ``{"line", "result"}`` once per transmission
(result 0 = sent, else an error code), then, if an answer was awaited, ``daliAnswer``
``{"line", "result": 0 | 8 | 63, "daliData"}`` (no answer, 8-bit answer, framing error).
``daliMonitor`` events report bus traffic, including other masters'. Lines are numbered from 0 on
the wire and from 1 in our configuration. Events carry no request id: correlation is by line, which
works because a line has one transaction at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aiohttp

from drivers.base import ControllerTimeout, ControllerUnreachable, ProtocolFault, RequestRejected, try_acquire
from drivers.dali.aiohttp_internals import send_now, why_not
from drivers.dali.frames import FRAMING_ERROR, NO_REPLY, Reply, ReplyKind, Transaction
from drivers.dali.transport import HeldLineTransport

log = logging.getLogger(__name__)

RESULT_SENT = 0
RESULT_NO_BUS_POWER = 1
RESULT_NAMES = {
    1: "no bus voltage",
    2: "gateway busy initialising",
    3: "quiescent mode",
    4: "buffer full",
    5: "no such line",
    6: "syntax error",
    7: "macro active",
    61: "collision",
    62: "bus error",
    63: "bus timeout",
}
ANSWER_NONE = 0
ANSWER_8BIT = 8
ANSWER_FRAMING_ERROR = 63
PRIORITY_COMMAND = 2


def encode_request(line: int, transaction: Transaction) -> str:
    frame = transaction.frame
    return json.dumps(
        {
            "type": "daliFrame",
            "data": {
                "line": line - 1,
                "numberOfBits": len(frame),
                "daliData": list(frame.pack),
                "mode": {
                    "sendTwice": transaction.send_twice,
                    "waitForAnswer": transaction.expects_reply,
                    "priority": PRIORITY_COMMAND,
                },
            },
        },
        separators=(",", ":"),
    )


class _Closed:
    """Put into every line's queue when the socket ends."""


class LunatoneTransport(HeldLineTransport[str]):
    def __init__(self, controller_id: str, timeout_s: float, url: str, lines: list[int]) -> None:
        super().__init__(controller_id, timeout_s)
        self.url = url
        self.lines = list(lines)
        self.gateway_lines: int | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._events: dict[int, asyncio.Queue[dict[str, Any] | _Closed]] = {}
        self._locks = {line: asyncio.Lock() for line in self.lines}
        self._connect_lock = asyncio.Lock()
        self._unsent: dict[int, str] = {}
        """Lines whose ``write`` failed, with why: ``complete`` raises it (the next ``write`` or
        the session's end forgets it, if ``complete`` never ran)."""
        self._closing: set[asyncio.Task[None]] = set()
        """Sessions abandoned without awaiting, being closed."""

    def is_open(self) -> bool:
        return self._ws is not None and not self._ws.closed and self._reader is not None and not self._reader.done()

    async def connect(self) -> None:
        async with self._connect_lock:
            if self.is_open():
                return
            await self._close()
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
            try:
                async with asyncio.timeout(self.timeout_s):
                    ws = await session.ws_connect(self.url, autoping=True, heartbeat=None, max_msg_size=1 << 20)
                    greeting = await ws.receive()
            except TimeoutError:
                await session.close()
                raise ControllerTimeout(self.controller_id, f"no WebSocket session with {self.url}") from None
            except (aiohttp.ClientError, OSError) as exc:
                await session.close()
                raise ControllerUnreachable(self.controller_id, f"{self.url}: {exc}") from None
            info = _json(greeting)
            if info is None or info.get("type") != "info":
                await ws.close()
                await session.close()
                raise ProtocolFault(self.controller_id, f"{self.url}: expected an 'info' greeting, got {greeting.data!r:.80}")
            descriptor = info.get("data", {}).get("descriptor", {})
            self.gateway_lines = int(descriptor.get("lines", 0)) or None
            if self.gateway_lines is not None and max(self.lines) > self.gateway_lines:
                await ws.close()
                await session.close()
                raise RequestRejected(
                    self.controller_id, f"{self.url}: the gateway has {self.gateway_lines} line(s), line {max(self.lines)} is configured"
                )
            self._session, self._ws = session, ws
            self._events = {line: asyncio.Queue() for line in self.lines}
            self._reader = asyncio.create_task(self._read(ws), name=f"dali-ws-{self.controller_id}")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                event = _json(message)
                if event is None:
                    continue
                data = event.get("data") or {}
                line = int(data.get("line", -1)) + 1
                if event.get("type") == "daliMonitor":
                    # only other masters' frames are monitored (the gateway's "filtering" default)
                    self.foreign_frames[line] += 1
                    continue
                queue = self._events.get(line)
                if queue is not None and event.get("type") in ("daliFrame", "daliAnswer"):
                    queue.put_nowait(event)
        finally:
            for queue in self._events.values():
                queue.put_nowait(_Closed())

    async def close(self) -> None:
        async with self._connect_lock:
            await self._close()
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _close(self) -> None:
        await _close_session(*self._detach())

    def _detach(self) -> tuple[aiohttp.ClientWebSocketResponse | None, aiohttp.ClientSession | None, asyncio.Task[None] | None]:
        parts = self._ws, self._session, self._reader
        self._ws, self._session, self._reader = None, None, None
        self._unsent.clear()
        return parts

    def abandon(self, line: int) -> None:
        """The whole WebSocket goes (its events carry no request id), closed in the background."""
        ws, session, reader = self._detach()
        if ws is None and session is None and reader is None:
            return
        task = asyncio.ensure_future(_close_session(ws, session, reader))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def where(self, line: int, transaction: Transaction | None = None) -> str:
        return f"line {line} ({self.url})" + (f" {transaction}" if transaction is not None else "")

    def encode(self, line: int, transaction: Transaction) -> str:
        if line not in self._locks:
            raise RequestRejected(self.controller_id, f"no line {line} configured on this gateway")
        return encode_request(line, transaction)

    def try_hold(self, line: int) -> bool:
        """Also False where the frame could not be written without awaiting (drivers/dali/aiohttp_internals.py)."""
        ws = self._ws
        return self.is_open() and ws is not None and why_not(ws) is None and try_acquire(self._locks[line])

    def write(self, line: int, request: str) -> None:
        ws = self._ws
        assert ws is not None
        self._unsent.pop(line, None)  # what an earlier, abandoned write left
        self._flush(line)
        try:
            send_now(ws, request)
        except (aiohttp.ClientError, ConnectionError) as exc:
            self._unsent[line] = str(exc) or exc.__class__.__name__

    def _line_lock(self, line: int) -> asyncio.Lock:
        return self._locks[line]

    def _flush(self, line: int) -> None:
        """Leftovers of a transaction that timed out."""
        queue = self._events[line]
        while not queue.empty():
            queue.get_nowait()

    async def _open_line(self, line: int) -> None:
        if not self.is_open():
            await self.connect()

    async def _transact(self, line: int, transaction: Transaction, request: str, *, written: bool) -> Reply:
        queue = self._events[line]
        try:
            async with asyncio.timeout(self.timeout_s):
                if not written:
                    ws = self._ws
                    if ws is None:  # another line's failure ended the session meanwhile
                        raise ConnectionError("the WebSocket session was closed")
                    self._flush(line)
                    await ws.send_str(request)
                elif (unsent := self._unsent.pop(line, None)) is not None:
                    raise ConnectionError(unsent)
                for _ in range(2 if transaction.send_twice else 1):
                    event = await self._next(line, queue, "daliFrame", transaction)
                    result = int(event["data"].get("result", -1))
                    if result != RESULT_SENT:
                        self._refused(line, transaction, result)
                    self.frames_sent[line] += 1
                if not transaction.expects_reply:
                    return NO_REPLY
                answer = (await self._next(line, queue, "daliAnswer", transaction))["data"]
        except TimeoutError:
            # events carry no request id: a late answer would be taken for the next one's, so
            # the session is dropped and the next send starts in step on a new one
            await self.close()
            raise ControllerTimeout(self.controller_id, f"{self.where(line, transaction)}: no answer event") from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            await self.close()
            raise ControllerUnreachable(self.controller_id, f"{self.where(line, transaction)}: {exc}") from None
        except asyncio.CancelledError:
            self.abandon(line)
            raise
        kind = int(answer.get("result", -1))
        if kind == ANSWER_NONE:
            return NO_REPLY
        if kind == ANSWER_8BIT:
            return Reply(ReplyKind.VALUE, int(answer["daliData"]) & 0xFF)
        if kind == ANSWER_FRAMING_ERROR:
            return FRAMING_ERROR
        raise ProtocolFault(self.controller_id, f"{self.where(line, transaction)}: unknown answer result {kind}")

    async def _next(
        self, line: int, queue: asyncio.Queue[dict[str, Any] | _Closed], kind: str, transaction: Transaction
    ) -> dict[str, Any]:
        while True:
            event = await queue.get()
            if isinstance(event, _Closed):
                raise ControllerUnreachable(self.controller_id, f"{self.where(line, transaction)}: WebSocket closed")
            if event.get("type") == kind:
                return event
            raise ProtocolFault(self.controller_id, f"{self.where(line, transaction)}: got {event.get('type')} before {kind}")

    def _refused(self, line: int, transaction: Transaction, result: int) -> None:
        reason = RESULT_NAMES.get(result, f"result {result}")
        if result == RESULT_NO_BUS_POWER:
            raise ControllerUnreachable(
                self.controller_id, f"{self.where(line, transaction)}: the gateway could not put the frame on the bus: {reason}"
            )
        if result in (61, 62, 63):
            raise ProtocolFault(self.controller_id, f"{self.where(line, transaction)}: {reason}")
        raise RequestRejected(self.controller_id, f"{self.where(line, transaction)}: gateway refused: {reason}")


async def _close_session(
    ws: aiohttp.ClientWebSocketResponse | None, session: aiohttp.ClientSession | None, reader: asyncio.Task[None] | None
) -> None:
    with contextlib.suppress(Exception):
        if ws is not None:
            await asyncio.wait_for(ws.close(), 1.0)
    if reader is not None:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
    if session is not None:
        with contextlib.suppress(Exception):
            await session.close()


def _json(message: aiohttp.WSMessage) -> dict[str, Any] | None:
    if message.type != aiohttp.WSMsgType.TEXT:
        return None
    try:
        value = json.loads(message.data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
