"""daliserver protocol v2 over TCP (one bus per endpoint; 4-byte frames).

Request ``[2, 0, address byte, opcode byte]``; reply ``[2, status, value, 0]`` with status 0 = no
answer, 1 = answer ``value``, 2 = a frame another master put on the bus (it can arrive between our
request and our reply: note it and keep reading), 255 = framing error. The protocol has no
send-twice flag: the frame is sent twice in a row, well inside the standard's 100 ms window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct

from drivers.base import ControllerTimeout, ControllerUnreachable, ProtocolFault, RequestRejected, try_acquire
from drivers.dali.frames import FRAMING_ERROR, NO_REPLY, Reply, ReplyKind, Transaction
from drivers.dali.transport import HeldLineTransport

log = logging.getLogger(__name__)

VERSION = 2
STATUS_NO_ANSWER = 0
STATUS_ANSWER = 1
STATUS_FOREIGN = 2
STATUS_FRAMING_ERROR = 255
MAX_FOREIGN_PER_REPLY = 32
"""Frames from other masters tolerated while waiting for one reply before calling it a fault."""


def encode_request(transaction: Transaction) -> bytes:
    frame = transaction.frame
    if len(frame) != 16:
        raise ValueError(f"daliserver v2 carries 16-bit frames only, not {len(frame)}-bit")
    return bytes((VERSION, 0)) + bytes(frame.pack)


class _Line:
    __slots__ = ("lock", "port", "reader", "writer")

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = asyncio.Lock()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None


class DaliserverTransport(HeldLineTransport[bytes]):
    def __init__(self, controller_id: str, timeout_s: float, host: str, ports: dict[int, int]) -> None:
        super().__init__(controller_id, timeout_s)
        self.host = host
        self._lines = {line: _Line(port) for line, port in ports.items()}

    async def connect(self) -> None:
        try:
            for number in self._lines:
                await self._open(number)
        except BaseException:
            await self.close()
            raise

    def is_open(self) -> bool:
        return all(_live(line) for line in self._lines.values())

    async def _open(self, number: int) -> _Line:
        line = self._lines[number]
        if _live(line):
            return line
        await self._drop(line)  # the gateway ended it (EOF): start anew
        try:
            async with asyncio.timeout(self.timeout_s):
                line.reader, line.writer = await asyncio.open_connection(self.host, line.port)
        except TimeoutError:
            raise ControllerTimeout(self.controller_id, f"line {number}: no TCP session to {self.host}:{line.port}") from None
        except OSError as exc:
            raise ControllerUnreachable(
                self.controller_id, f"line {number}: {self.host}:{line.port}: {exc.strerror or exc}"
            ) from None
        return line

    async def close(self) -> None:
        for line in self._lines.values():
            await self._drop(line)

    async def _drop(self, line: _Line) -> None:
        writer = _forget(line)
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.5)

    def abandon(self, line: int) -> None:
        _forget(self._lines[line])

    def encode(self, line: int, transaction: Transaction) -> bytes:
        if line not in self._lines:
            raise RequestRejected(self.controller_id, f"no line {line} on this gateway")
        try:
            return encode_request(transaction)
        except ValueError as exc:
            raise RequestRejected(self.controller_id, f"{self.where(line, transaction)}: {exc}") from None

    def _line_lock(self, line: int) -> asyncio.Lock:
        return self._lines[line].lock

    async def _open_line(self, line: int) -> None:
        await self._open(line)

    def try_hold(self, line: int) -> bool:
        state = self._lines[line]
        return _live(state) and try_acquire(state.lock)

    def write(self, line: int, request: bytes) -> None:
        state = self._lines[line]
        assert state.writer is not None
        state.writer.write(request)
        self.frames_sent[line] += 1

    async def _transact(self, number: int, transaction: Transaction, request: bytes, *, written: bool) -> Reply:
        line = self._lines[number]
        try:
            async with asyncio.timeout(self.timeout_s):
                if not written:
                    self.write(number, request)
                reply = await self._reply(number, line)
                if transaction.send_twice:
                    self.write(number, request)
                    reply = await self._reply(number, line)
        except TimeoutError:
            await self._drop(line)
            raise ControllerTimeout(self.controller_id, f"{self.where(number, transaction)}: no reply") from None
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self._drop(line)
            raise ControllerUnreachable(self.controller_id, f"{self.where(number, transaction)}: session lost ({exc})") from None
        except ProtocolFault:
            await self._drop(line)
            raise
        except asyncio.CancelledError:
            _forget(line)  # its reply would be taken for the next transaction's
            raise
        return reply if transaction.expects_reply else NO_REPLY

    async def _reply(self, number: int, line: _Line) -> Reply:
        """The gateway's reply to the frame just written, past other masters' frames."""
        assert line.reader is not None and line.writer is not None
        await line.writer.drain()
        for _ in range(MAX_FOREIGN_PER_REPLY):
            version, status, value, _pad = struct.unpack("BBBB", await line.reader.readexactly(4))
            if version != VERSION:
                raise ProtocolFault(self.controller_id, f"line {number}: reply version {version}, expected {VERSION}")
            if status == STATUS_FOREIGN:
                self.foreign_frames[number] += 1
                log.debug("%s line %d: frame from another master: %02x", self.controller_id, number, value)
                continue
            if status == STATUS_NO_ANSWER:
                return NO_REPLY
            if status == STATUS_ANSWER:
                return Reply(ReplyKind.VALUE, value)
            if status == STATUS_FRAMING_ERROR:
                return FRAMING_ERROR
            raise ProtocolFault(self.controller_id, f"line {number}: unknown reply status {status}")
        raise ProtocolFault(self.controller_id, f"line {number}: flooded by frames from other masters")


def _live(line: _Line) -> bool:
    """The session is open as far as this side can tell without awaiting."""
    reader, writer = line.reader, line.writer
    return (
        reader is not None and writer is not None and not writer.is_closing()
        and not reader.at_eof() and reader.exception() is None
    )


def _forget(line: _Line) -> asyncio.StreamWriter | None:
    """End the line's session now; returns its writer, closing, for whoever wants to wait for it."""
    writer, line.reader, line.writer = line.writer, None, None
    if writer is not None:
        writer.close()
    return writer
