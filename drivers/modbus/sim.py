"""Simulated cabinet controllers on loopback, built on pymodbus's server side.

Each controller gets its own ``ModbusTcpServer`` with one ``SimDevice``; the device's async
``action`` hook routes every request to a :class:`~drivers.modbus.device.Cabinet`, which is the
source of truth: writes change the model, reads are refreshed from it. Faults are injected at run
time. A request for a unit id the cabinet does not have gets exception 0x0B, as a gateway answers
(pymodbus itself would raise ``KeyError`` and answer 0x04).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import random
import resource
import socket
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.pdu import ModbusPDU

from drivers.base import Fault
from drivers.modbus.device import NOMINAL_V
from drivers.modbus.driver import modbus_settings
from drivers.modbus.profile import profiles
from drivers.modbus.pymodbus_internals import CabinetServer, OnBytes
from drivers.modbus.sim_cabinet import SimulatedCabinet

if TYPE_CHECKING:
    from lightctl.model.installation import ControllerConfig

FAULT_KINDS = frozenset(
    {
        "offline", "slow", "error", "breaker_trip", "lamp_failure", "stuck_contactor",
        "door_open", "phase_loss", "supply_voltage", "cable_theft", "leakage", "over_current",
    }
)
CHANNEL_FAULTS = frozenset({"breaker_trip", "lamp_failure", "stuck_contactor"})
OVER_CURRENT_DEFAULT_A = 150.0
"""Amps an ``over_current`` fault adds to phase A unless its value says otherwise."""
LISTEN_BACKLOG = 128

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def raise_file_limit() -> int:
    """Raise RLIMIT_NOFILE to its hard limit (each simulated controller holds two sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class WriteArrivals:
    """Finds where each request begins in one connection's byte stream (MBAP's length field says
    where the next one starts) and notes the arrival of the writes on their cabinets."""

    __slots__ = ("head", "skip")

    def __init__(self) -> None:
        self.head = b""
        """The start of a header that the last chunk cut short."""
        self.skip = 0
        """Bytes of a request begun in an earlier chunk."""

    def feed(self, data: bytes, now: float, cabinets: Mapping[int, SimulatedCabinet]) -> None:
        view = self.head + data if self.head else data
        at = self.skip
        while len(view) - at >= 8:
            length = int.from_bytes(view[at + 4 : at + 6], "big")
            cabinet = cabinets.get(view[at + 6])
            if cabinet is not None and view[at + 7] in WRITE_FUNCTION_CODES:
                cabinet.write_times.append(now)
            at += 6 + max(length, 2)
        self.skip, self.head = (at - len(view), b"") if at >= len(view) else (0, view[at:])


WRITE_FUNCTION_CODES = frozenset({5, 6, 15, 16, 23})
"""Requests that change the device: their arrival instants are kept for show timing."""


class _PortCycle:
    """Candidate listening ports below the kernel's ephemeral range (where outgoing connections
    take theirs), starting at a random point so that parallel processes rarely collide."""

    def __init__(self) -> None:
        low = 32768
        with contextlib.suppress(OSError, ValueError):
            low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        self.first, self.end = (10_000, low) if low > 20_000 else (low, 65_536)
        self.cursor = random.randrange(self.first, self.end)

    def __len__(self) -> int:
        return self.end - self.first

    def __str__(self) -> str:
        return f"{self.first}..{self.end - 1}"

    def next(self) -> int:
        port = self.cursor
        self.cursor = self.first if port + 1 >= self.end else port + 1
        return port


FREE_PORTS = _PortCycle()


class _Endpoint:
    """One listening address: a cabinet controller, or a gateway with several units behind it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cabinets: dict[int, SimulatedCabinet] = {}
        self.server: CabinetServer | None = None
        self.restarting = False
        self.pending: set[asyncio.Task[Any]] = set()

    def add(self, cabinet: SimulatedCabinet) -> None:
        if cabinet.unit in self.cabinets:
            other = self.cabinets[cabinet.unit].controller.id
            raise ValueError(f"{cabinet.controller.id} and {other} are both unit {cabinet.unit} at port {self.port}")
        self.cabinets[cabinet.unit] = cabinet

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending and (cabinet := self.cabinets.get(pdu.dev_id)) is not None:
            cabinet.requests += 1
        return pdu

    def _arrivals(self) -> OnBytes:
        """A new connection's reader of write arrivals (each connection has its own stream)."""
        return partial(WriteArrivals().feed, cabinets=self.cabinets)

    def bind(self) -> socket.socket:
        """A listening socket, bound now: clients queue in its backlog until the server serves."""
        if not self.port:
            return self._bind_free_port()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebinding after a restart
            sock.bind((self.host, self.port))
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _bind_free_port(self) -> socket.socket:
        """Bind a free port of our own choosing. ``bind(port 0)`` with SO_REUSEADDR makes Linux
        scan its bound ports: 1.7 ms per socket at 3,000 (quadratic start-up), against 15 µs
        for an explicit port; and SO_REUSEADDR is what lets a restart rebind the same port while
        the old connections sit in TIME_WAIT."""
        for _ in range(len(FREE_PORTS)):
            self.port = FREE_PORTS.next()
            try:
                return self.bind()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    self.port = 0
                    raise
        self.port = 0
        raise OSError(errno.EADDRINUSE, f"no free port in {FREE_PORTS}")

    async def listen(self, sock: socket.socket | None = None) -> None:
        """Serve on (host, port); port 0 picks a free one, kept for later restarts."""
        sock = sock or self.bind()
        devices = [cabinet.device() for cabinet in self.cabinets.values()]
        server = CabinetServer(
            devices, sock, reader=self._arrivals, wrap_context=partial(_KnownUnits, endpoint=self),
            trace_pdu=self._trace, request_tasks=self.pending,
        )
        try:
            await server.serve()
        except BaseException:
            sock.close()
            raise
        finally:
            self.restarting = False
        self.server = server

    def drop(self) -> None:
        """Stop listening and drop every connection."""
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for task in list(self.pending):
            task.cancel()


class _KnownUnits:
    """The server's datastore wrapper: unknown unit ids (exception 0x0B, as a gateway answers),
    offline units behind a live gateway (no answer), slow replies and exception replies."""

    def __init__(self, core: Any, endpoint: _Endpoint) -> None:
        self.core = core
        self.endpoint = endpoint

    def device_ids(self) -> list[int]:
        ids: list[int] = self.core.device_ids()
        return ids

    async def _gate(self, device_id: int) -> ExcCodes | None:
        cabinet = self.endpoint.cabinets.get(device_id)
        if cabinet is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if cabinet.offline:
            raise NoSuchIdException(f"unit {device_id} is offline")
        if cabinet.slow_s > 0:
            await asyncio.sleep(cabinet.slow_s)
        return cabinet.error_code

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        if (refused := await self._gate(device_id)) is not None:
            return refused
        result: list[int] | list[bool] | ExcCodes = await self.core.async_getValues(device_id, func_code, address, count)
        return result

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: list[int] | list[bool]
    ) -> ExcCodes | None:
        if (refused := await self._gate(device_id)) is not None:
            return refused
        result: ExcCodes | None = await self.core.async_setValues(device_id, func_code, address, values)
        return result


def _bind_host(host: str) -> str:
    try:
        return host if ipaddress.ip_address(host).is_loopback else "127.0.0.1"
    except ValueError:
        return "127.0.0.1"


class ModbusSimulator:
    """:class:`drivers.base.SimulatorHost` for Modbus cabinet controllers."""

    fault_kinds = FAULT_KINDS

    def __init__(self, controllers: Sequence[ControllerConfig], *, any_port: bool = False) -> None:
        """Controllers that share a configured host and port (units behind one gateway) share
        one server; with ``any_port`` each such group binds a free port."""
        known = profiles()
        self.cabinets: dict[str, SimulatedCabinet] = {}
        self._endpoint_of: dict[str, _Endpoint] = {}
        groups: dict[tuple[str, int], _Endpoint] = {}
        for ctrl in controllers:
            settings = modbus_settings(ctrl)
            host = _bind_host(settings.host)
            key = (host, settings.port)
            endpoint = groups.get(key)
            if endpoint is None:
                endpoint = groups[key] = _Endpoint(host, 0 if any_port else settings.port)
            cabinet = SimulatedCabinet(ctrl, known[ctrl.profile])
            endpoint.add(cabinet)
            self.cabinets[ctrl.id] = cabinet
            self._endpoint_of[ctrl.id] = endpoint
        self._endpoints = list(groups.values())
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        raise_file_limit()
        try:
            for endpoint in self._endpoints:
                await endpoint.listen()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = [task for endpoint in self._endpoints for task in endpoint.pending]
        for endpoint in self._endpoints:
            endpoint.drop()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0)  # let the transports finish closing

    async def settle(self) -> None:
        """Wait until every pending restart (after clearing ``offline``) listens again."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def endpoints(self) -> Mapping[str, Mapping[str, Any]]:
        return {cid: {"host": e.host, "port": e.port} for cid, e in self._endpoint_of.items()}

    def cabinet(self, controller_id: str) -> SimulatedCabinet:
        try:
            return self.cabinets[controller_id]
        except KeyError:
            raise KeyError(f"no simulated controller {controller_id!r}") from None

    def _circuit(self, cabinet: SimulatedCabinet, fault: Fault) -> int:
        if fault.channel is None:
            raise ValueError(f"fault {fault.kind!r} needs a channel")
        try:
            return cabinet.circuit_of[fault.channel]
        except KeyError:
            raise ValueError(f"{cabinet.controller.id} has no channel {fault.channel!r}") from None

    def inject(self, controller_id: str, fault: Fault) -> None:
        cabinet = self.cabinet(controller_id)
        model = cabinet.model
        kind = fault.kind
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        if kind == "offline":
            cabinet.offline = True
            endpoint = self._endpoint_of[controller_id]
            if all(c.offline for c in endpoint.cabinets.values()):
                endpoint.drop()  # nothing answers at this address any more: connections refused
        elif kind == "slow":
            cabinet.slow_s = 1.0 if fault.value is None else float(fault.value)
        elif kind == "error":
            code = 4 if fault.value is None else int(fault.value)
            if code not in set(ExcCodes):
                raise ValueError(f"exception code {code} is not a Modbus exception ({sorted(map(int, ExcCodes))})")
            cabinet.error_code = ExcCodes(code)
        elif kind == "breaker_trip":
            model.trip(self._circuit(cabinet, fault), True)
        elif kind == "lamp_failure":
            model.fail_lamps(self._circuit(cabinet, fault), 1.0 if fault.value is None else float(fault.value))
        elif kind == "stuck_contactor":
            model.stick(self._circuit(cabinet, fault), True)
        elif kind == "door_open":
            model.set_supply(door_open=True)
        elif kind == "phase_loss":
            model.set_supply(phase_lost=1 if fault.value is None else int(fault.value))
        elif kind == "supply_voltage":
            model.set_supply(volts=NOMINAL_V if fault.value is None else float(fault.value))
        elif kind == "cable_theft":
            model.set_supply(cable_theft=True)
        elif kind == "leakage":
            model.set_supply(leakage=True)
        elif kind == "over_current":
            model.set_supply(fault_current_a=OVER_CURRENT_DEFAULT_A if fault.value is None else float(fault.value))

    def clear(self, controller_id: str, kind: str | None = None) -> None:
        cabinet = self.cabinet(controller_id)
        model = cabinet.model
        kinds = FAULT_KINDS if kind is None else {kind}
        endpoint = self._endpoint_of[controller_id]
        if "offline" in kinds and cabinet.offline:
            cabinet.offline = False
            if endpoint.server is None and not endpoint.restarting:
                sock = endpoint.bind()  # listening now, on the same port: clients queue until it serves
                endpoint.restarting = True
                task = asyncio.get_running_loop().create_task(endpoint.listen(sock))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if "slow" in kinds:
            cabinet.slow_s = 0.0
        if "error" in kinds:
            cabinet.error_code = None
        for n in range(1, len(model.circuits) + 1):
            if "breaker_trip" in kinds and model.circuits[n - 1].tripped:
                model.trip(n, False)
            if "lamp_failure" in kinds:
                model.fail_lamps(n, 0.0)
            if "stuck_contactor" in kinds and model.circuits[n - 1].stuck:
                model.stick(n, False)
        if "door_open" in kinds:
            model.set_supply(door_open=False)
        if "phase_loss" in kinds:
            model.set_supply(phase_lost=0)
        if "supply_voltage" in kinds:
            model.set_supply(volts=NOMINAL_V)
        if "cable_theft" in kinds:
            model.set_supply(cable_theft=False)
        if "leakage" in kinds:
            model.set_supply(leakage=False)
        if "over_current" in kinds:
            model.set_supply(fault_current_a=0.0)

    def request_count(self, controller_id: str) -> int:
        return self.cabinet(controller_id).requests

    def write_times(self, controller_id: str) -> list[float]:
        return list(self.cabinet(controller_id).write_times)
