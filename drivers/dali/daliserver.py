"""daliserver protocol v2 over TCP (one bus per endpoint; 4-byte frames).

Request ``[2, 0, address byte, opcode byte]``; reply ``[2, status, value, 0]`` with status 0 = no
answer, 1 = answer ``value``, 2 = a frame another master put on the bus (it can arrive between our
request and our reply: note it and keep reading), 255 = error.

Status 255 is what daliserver sends when its interface could not complete the transaction: the
frame did not go on the bus (no bus power, a short, a jammed interface), and, by python-dali's
account, also when several gear answered at once and the backward frame came garbled. To a command
it means the command was not delivered: an error, never a success. To a query it may be the
collision that a yes/no query to a group expects, so a frame no gear answers is sent next: if that
comes back 255 too, the bus is dead and the query fails with it; else the 255 was a garbled answer.

The protocol has no send-twice flag, and a pair sent one reply after the other is as far apart as
the gateway's round trip (154 ms over a 150 ms link, where IEC 62386-102 allows 100 ms): the two
requests of a send-twice command are written together, so the gateway queues them and puts the
second on the bus right after the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct

from dali.gear import general

from drivers.base import ControllerTimeout, ControllerUnreachable, ProtocolFault, RequestRejected, try_acquire
from drivers.dali.frames import FRAMING_ERROR, NO_REPLY, Reply, ReplyKind, Transaction, tx
from drivers.dali.transport import HeldLineTransport

log = logging.getLogger(__name__)

VERSION = 2
STATUS_NO_ANSWER = 0
STATUS_ANSWER = 1
STATUS_FOREIGN = 2
STATUS_FRAMING_ERROR = 255
MAX_FOREIGN_PER_REPLY = 32
"""Frames from other masters tolerated while waiting for one reply before calling it a fault."""
PROBE = tx(general.DTR2(0))
"""What is sent after a query answered 255, to tell a collision from a dead bus: no gear answers
it, and DTR2 is a scratch register none of this driver's sequences uses."""


def encode_request(transaction: Transaction) -> bytes:
    """The request, twice over for a send-twice command (both written at once)."""
    frame = transaction.frame
    if len(frame) != 16:
        raise ValueError(f"daliserver v2 carries 16-bit frames only, not {len(frame)}-bit")
    request = bytes((VERSION, 0)) + bytes(frame.pack)
    return request * 2 if transaction.send_twice else request


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

    def where(self, line: int, transaction: Transaction | None = None) -> str:
        state = self._lines.get(line)
        gateway = f" (daliserver {self.host}:{state.port})" if state is not None else ""
        return f"line {line}{gateway}" + (f" {transaction}" if transaction is not None else "")

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
        self.frames_sent[line] += len(request) // 4

    async def _transact(self, number: int, transaction: Transaction, request: bytes, *, written: bool) -> Reply:
        line = self._lines[number]
        try:
            async with asyncio.timeout(self.timeout_s):
                if not written:
                    self.write(number, request)
                reply = await self._reply(number, line)
                if transaction.send_twice:
                    second = await self._reply(number, line)
                    reply = FRAMING_ERROR if FRAMING_ERROR in (reply, second) else second
                if reply is FRAMING_ERROR and not (transaction.expects_reply and await self._bus_answers(number, line)):
                    raise ControllerUnreachable(
                        self.controller_id,
                        f"{self.where(number, transaction)}: the gateway could not put the frame on the bus "
                        "(daliserver status 255): no bus power, a short on the line, or the interface is down",
                    )
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

    async def _bus_answers(self, number: int, line: _Line) -> bool:
        """After a query answered 255: does a frame no gear answers go through (a collision),
        or is it refused too (a dead bus)?"""
        self.write(number, encode_request(PROBE))
        return await self._reply(number, line) is not FRAMING_ERROR

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
