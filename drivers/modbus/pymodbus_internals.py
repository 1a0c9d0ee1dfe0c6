"""The pymodbus internals the Modbus simulator relies on, in one place: written for pymodbus 3.16.1.

The driver uses only pymodbus's public PDU classes (protocol.py encodes requests with them,
transport.py decodes replies with them). The simulator subclasses pymodbus's TCP server:

* **Serving on a socket of our own** (``call_create``): the simulator binds its ports itself, below
  the kernel's ephemeral range and with SO_REUSEADDR, so that thousands start without Linux's
  quadratic port-0 scan and a restarted cabinet gets its port back (sim.py ``_Endpoint.bind``).
* **Its own connection handler** (``callback_new_connection``): each chunk read is handed to the
  simulator first (the arrival instants of writes, for show timing) and then processed in the
  process's turn among simulated devices (drivers/simturns.py).
* **The datastore wrapped** (``context``): unknown and offline units answered as a gateway does.

And two fast paths, measured with ``lightctl bench switch --protocol modbus --controllers 500
--rounds 5`` (CPU of the simulator process per controller and switch, four interleaved runs,
4 Dec 2026 22:38-22:40):

* each request run as a plain task of the loop (``handle_later``): pymodbus's
  ``run_coroutine_threadsafe`` wakes the selector through its self-pipe for every request.
  0.19-0.226 ms with it, 0.247-0.28 ms without (every run).
* FC04 replies packed with one struct call (the decoder's FC04 class): 0.19-0.226 ms with it,
  0.202-0.233 ms without (better in three runs of four).

:func:`fast_paths` turns the two fast paths off, with one log line, for a pymodbus not named in
:data:`WRITTEN_FOR`; the rest is what the simulator is made of and has no fallback.
tests/test_modbus_pymodbus_internals.py is the contract: it fails, never skips, when pymodbus
moves one of them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections.abc import Callable, Sequence
from functools import cache, partial
from importlib.metadata import version
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.register_message import ReadInputRegistersRequest, ReadInputRegistersResponse
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import SimDevice

from drivers.simturns import turns

log = logging.getLogger(__name__)

WRITTEN_FOR = ("3.16.1",)
"""pymodbus versions whose server internals this module was checked against (by the contract test)."""
INSTALLED = version("pymodbus")
_reported: list[str] = []


def fast_paths() -> bool:
    """Whether the two fast paths may be used; logs once when they are off."""
    if INSTALLED in WRITTEN_FOR:
        return True
    if not _reported:
        _reported.append(INSTALLED)
        log.warning("pymodbus %s: the Modbus simulator's fast paths are off (written for %s): requests are "
                    "handled and FC04 replies packed as pymodbus does", INSTALLED, ", ".join(WRITTEN_FOR))
    return False


@cache
def _reply_struct(count: int) -> struct.Struct:
    return struct.Struct(f">B{count}H")


class InputRegistersReply(ReadInputRegistersResponse):
    def encode(self) -> bytes:
        registers = self.registers
        return _reply_struct(len(registers)).pack(2 * len(registers), *registers)


class ReadInputRegisters(ReadInputRegistersRequest):
    """FC04 whose reply packs its registers with one struct call: pymodbus packs and concatenates
    them one by one."""

    async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
        values = await context.async_getValues(device_id, self.function_code, self.address, self.count)
        if isinstance(values, ExcCodes):
            return ExceptionResponse(self.function_code, values)
        return InputRegistersReply(registers=values, dev_id=device_id, transaction_id=self.transaction_id)


@cache
def _decoder() -> DecodePDU:
    """One request decoder with our FC04 for every server: ``custom_pdu=`` would deep-copy
    pymodbus's PDU table into each server (half a millisecond each at start-up)."""
    decoder = DecodePDU(True)
    decoder.register(ReadInputRegisters)
    return decoder


OnBytes = Callable[[bytes, float], None]
"""Called with each chunk a connection reads and the instant it was read, before pymodbus sees it."""


class _RequestHandler(ServerRequestHandler):
    server: CabinetServer
    on_bytes: OnBytes

    def data_received(self, data: bytes) -> None:
        self.on_bytes(data, time.monotonic())
        turns().call(partial(ServerRequestHandler.data_received, self, data))

    def handle_later(self) -> None:
        if not self.server.fast:
            super().handle_later()  # type: ignore[no-untyped-call]
            return
        task = self.loop.create_task(self.handle_request())  # type: ignore[no-untyped-call]
        tasks = self.server.request_tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)


class CabinetServer(ModbusTcpServer):
    """pymodbus's TCP server on a socket bound by the caller (see the module's docstring)."""

    def __init__(
        self, devices: Sequence[SimDevice], sock: socket.socket, *, reader: Callable[[], OnBytes],
        wrap_context: Callable[[Any], Any], trace_pdu: Callable[[bool, ModbusPDU], ModbusPDU],
        request_tasks: set[asyncio.Task[Any]],
    ) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(list(devices), address=(host, port), trace_pdu=trace_pdu)
        self.fast = fast_paths()
        if self.fast:
            self.decoder = _decoder()
        self.reader = reader
        """Makes each new connection's OnBytes."""
        self.request_tasks = request_tasks
        self.ignore_missing_devices = True  # silence for an offline unit behind a live gateway
        self.context = wrap_context(self.context)
        loop = asyncio.get_running_loop()
        self.call_create = partial(loop.create_server, self.handle_new_connection, sock=sock, start_serving=True)

    def callback_new_connection(self) -> _RequestHandler:
        handler = _RequestHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)  # type: ignore[no-untyped-call]
        handler.on_bytes = self.reader()
        return handler

    async def serve(self) -> None:
        await self.serve_forever(background=True)


__all__ = ["INSTALLED", "WRITTEN_FOR", "CabinetServer", "InputRegistersReply", "ReadInputRegisters", "fast_paths"]
