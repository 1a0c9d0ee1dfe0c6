"""Modbus TCP request/response over one asyncio connection.

Why not pymodbus's ``AsyncModbusTcpClient``: measured with ``python -m drivers.modbus.perf
--controllers 1000`` (simulators in another process, the 2-core machine shared), the same requests
cost 88-125 µs of client CPU each through it against 67-95 µs through this link and 55-75 µs for the
pre-encoded floor; the simulator side (pymodbus's server) costs 110-150 µs per request, so the
client is not the bottleneck, but on two cores every µs of either side is wall time. This link also
keeps the failure rules in our hands: replies matched on transaction id, unit and length, late
replies dropped, a connection closed after a timeout, no reconnect behind the caller's back.
pymodbus stays the protocol: requests are encoded with its PDU classes (``protocol.py``), replies
decoded with its response classes; here is only the MBAP framing.

Rules: one request at a time per connection (many field gateways do not pipeline), the reply is
matched on transaction id, protocol id, unit id and length; a reply for an abandoned transaction is
dropped; a timeout or a malformed frame closes the connection so that the next call starts clean.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from functools import cache
from typing import cast

from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import WriteMultipleCoilsResponse
from pymodbus.pdu.register_message import ReadInputRegistersResponse, WriteMultipleRegistersResponse

from drivers.base import ControllerTimeout, ControllerUnreachable, LockTurn, ProtocolFault, RequestRejected
from drivers.modbus.protocol import FC_READ_INPUT_REGISTERS, FC_WRITE_COILS, FC_WRITE_REGISTERS, Request

MBAP = struct.Struct(">HHHB")
MAX_ADU = 260
EXCEPTION_NAMES = {
    1: "ILLEGAL FUNCTION",
    2: "ILLEGAL DATA ADDRESS",
    3: "ILLEGAL DATA VALUE",
    4: "SERVER DEVICE FAILURE",
    5: "ACKNOWLEDGE",
    6: "SERVER DEVICE BUSY",
    8: "MEMORY PARITY ERROR",
    0x0A: "GATEWAY PATH UNAVAILABLE",
    0x0B: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}
REPLIES: dict[int, type[ModbusPDU]] = {
    FC_READ_INPUT_REGISTERS: ReadInputRegistersResponse,
    FC_WRITE_COILS: WriteMultipleCoilsResponse,
    FC_WRITE_REGISTERS: WriteMultipleRegistersResponse,
}


@dataclass(frozen=True, slots=True)
class Sending:
    """A request on the wire: its transaction id and the future of its reply (unit, PDU)."""

    tid: int
    reply: asyncio.Future[tuple[int, bytes]]


@cache
def _registers(count: int) -> struct.Struct:
    return struct.Struct(f">{count}H")


class _Framing(asyncio.Protocol):
    """Splits the byte stream into MBAP frames and hands each to the waiting transaction."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiting: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self.fault: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 8:
            tid, pid, length, unit = MBAP.unpack_from(buffer)
            if pid != 0 or not 2 <= length <= MAX_ADU - 6:
                self._fail(f"malformed MBAP header (protocol id {pid}, length {length})")
                return
            end = 6 + length
            if len(buffer) < end:
                return
            pdu = bytes(buffer[7:end])
            del buffer[:end]
            future = self.waiting.pop(tid, None)
            if future is not None and not future.done():
                future.set_result((unit, pdu))

    def _fail(self, why: str) -> None:
        self.fault = why
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError(why))
        self.waiting.clear()
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        why = self.fault or (f"connection lost: {exc}" if exc else "connection closed by the device")
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError(why))
        self.waiting.clear()


class ModbusTcpLink:
    """A connection to one unit of one Modbus TCP endpoint; reconnects on the next call after a loss."""

    def __init__(self, controller_id: str, host: str, port: int, unit: int, timeout_s: float) -> None:
        self.controller_id = controller_id
        self.host, self.port, self.unit = host, port, unit
        self.timeout_s = timeout_s
        self._protocol: _Framing | None = None
        self._lock = asyncio.Lock()
        self._turn = LockTurn(self._lock)
        self._tid = 0

    @property
    def connected(self) -> bool:
        return self._protocol is not None and self._protocol.transport is not None

    @property
    def in_flight(self) -> int:
        """Requests on the wire waiting for their replies."""
        return len(self._protocol.waiting) if self._protocol is not None else 0

    async def connect(self) -> None:
        if self.connected:
            return
        self.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s):
                _, protocol = await loop.create_connection(_Framing, self.host, self.port)
        except TimeoutError:
            raise ControllerUnreachable(
                self.controller_id, f"no TCP connection to {self.host}:{self.port} within {self.timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise ControllerUnreachable(
                self.controller_id, f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        self._protocol = protocol

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()

    async def execute(self, request: Request) -> ModbusPDU:
        """Send one request and return its decoded reply; raises the driver errors.

        A connection that was idle may have been dropped by the device (a reboot, an idle timeout);
        if it fails before any reply, the request is sent once more on a new connection. Every
        request this driver sends sets absolute values, so sending it twice is harmless."""
        async with self._lock:
            return await self.execute_held(request)

    @property
    def turn(self) -> LockTurn:
        """The link's turn (one request at a time), for a show's beat: ``fire_with_turns`` takes
        it without waiting, the holder puts its first request on the wire with ``send_first``,
        finishes it with ``complete``, sends the rest with ``execute_held``, and gives it back."""
        return self._turn

    def send_first(self, request: Request) -> Sending | None:
        """Put ``request`` on the wire now, for the holder of the link's turn; None, with nothing
        sent, when the link is not connected."""
        return self._send(request) if self.connected else None

    def abandon(self, sending: Sending) -> None:
        """Give up a request whose reply is still due (its waiter gone before the reply): the
        device may still be busy with it, so the connection is closed to start clean."""
        if sending.reply.done():
            return
        sending.reply.cancel()
        if self._protocol is not None:
            self._protocol.waiting.pop(sending.tid, None)
        self.close()

    async def execute_held(self, request: Request) -> ModbusPDU:
        """``execute`` for a caller that holds the link's turn."""
        reused = self.connected
        await self.connect()
        return await self.complete(request, self._send(request), reused=reused)

    async def complete(self, request: Request, sending: Sending, *, reused: bool = True) -> ModbusPDU:
        """Wait for the reply to a request that is on the wire, and check it."""
        try:
            unit, pdu = await self._reply(request, sending)
        except ConnectionError as exc:
            self.close()
            if not reused:
                raise ControllerUnreachable(self.controller_id, f"{request.describe()}: {exc}") from None
            await self.connect()
            try:
                unit, pdu = await self._reply(request, self._send(request))
            except ConnectionError as again:
                self.close()
                raise ControllerUnreachable(self.controller_id, f"{request.describe()}: {again}") from None
        return self._check(request, unit, pdu)

    def _send(self, request: Request) -> Sending:
        """Frame and write the request; the future fails with ConnectionError if the link is down."""
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            future.set_exception(ConnectionError("connection closed by the device"))
            return Sending(0, future)
        self._tid = tid = (self._tid % 0xFFFF) + 1
        protocol.waiting[tid] = future
        protocol.transport.write(MBAP.pack(tid, 0, len(request.pdu) + 1, self.unit) + request.pdu)
        return Sending(tid, future)

    async def _reply(self, request: Request, sending: Sending) -> tuple[int, bytes]:
        protocol = self._protocol
        try:
            async with asyncio.timeout(self.timeout_s):
                return await sending.reply
        except TimeoutError:
            if protocol is not None:
                protocol.waiting.pop(sending.tid, None)
            self.close()
            raise ControllerTimeout(
                self.controller_id, f"no reply to {request.describe()} within {self.timeout_s:g} s"
            ) from None
        except asyncio.CancelledError:
            # the caller gave up (its own deadline): the device may still be busy with this
            # request, and most cabinets do not queue a second one, so start clean next time
            if protocol is not None:
                protocol.waiting.pop(sending.tid, None)
            self.close()
            raise

    def _decode(self, request: Request, pdu: bytes) -> ModbusPDU:
        """Decode with pymodbus's response class for the function code (its ``DecodePDU`` formats
        a debug string of every PDU, logging on or off). The registers of a read reply are
        unpacked with one precompiled struct: pymodbus unpacks them one by one, the largest single
        CPU cost of a read-back here (about 25 µs for the 51 registers of cabinet-8ch)."""
        function_code = pdu[0]
        reply: ModbusPDU
        if function_code == FC_READ_INPUT_REGISTERS and len(pdu) >= 2:
            size = pdu[1]
            if size % 2 or len(pdu) != 2 + size:
                self.close()
                raise ProtocolFault(
                    self.controller_id, f"{request.describe()}: byte count {size} in a reply of {len(pdu)} bytes"
                )
            return ReadInputRegistersResponse(registers=list(_registers(size // 2).unpack_from(pdu, 2)))
        if function_code & 0x80:
            reply = ExceptionResponse(function_code & 0x7F)
        elif (cls := REPLIES.get(function_code)) is not None:
            reply = cls()
        else:
            self.close()
            raise ProtocolFault(self.controller_id, f"reply FC{function_code} to {request.describe()}")
        try:
            reply.decode(pdu[1:])
        except (ModbusException, ValueError, IndexError, struct.error):
            self.close()
            raise ProtocolFault(self.controller_id, f"undecodable reply to {request.describe()}: {pdu.hex()}") from None
        return reply

    def _check(self, request: Request, unit: int, pdu: bytes) -> ModbusPDU:
        if unit != self.unit:
            self.close()
            raise ProtocolFault(self.controller_id, f"reply to {request.describe()} from unit {unit}, not {self.unit}")
        reply = self._decode(request, pdu)
        if isinstance(reply, ExceptionResponse):
            if reply.function_code & 0x7F != request.function_code:
                self.close()
                raise ProtocolFault(self.controller_id, f"exception reply for FC{reply.function_code & 0x7F} "
                                    f"to {request.describe()}")
            code = reply.exception_code
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise RequestRejected(
                self.controller_id,
                f"{request.describe()} refused by unit {self.unit}: exception {code:#04x} {name}",
            )
        if reply.function_code != request.function_code:
            self.close()
            raise ProtocolFault(self.controller_id, f"reply FC{reply.function_code} to {request.describe()}")
        if request.function_code == FC_READ_INPUT_REGISTERS:
            if len(reply.registers) != request.count or len(pdu) != 2 + 2 * request.count:
                self.close()
                raise ProtocolFault(
                    self.controller_id,
                    f"{request.describe()}: {len(reply.registers)} registers in reply, expected {request.count}",
                )
        elif request.function_code in (FC_WRITE_COILS, FC_WRITE_REGISTERS) and (
            reply.address != request.address or reply.count != request.count
        ):
            self.close()
            raise ProtocolFault(
                self.controller_id,
                f"{request.describe()}: reply echoes {reply.address}+{reply.count}",
            )
        return reply
