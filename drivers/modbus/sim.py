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
import ipaddress
import logging
import resource
import socket
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.base import Fault
from drivers.modbus.device import NOMINAL_V, Cabinet
from drivers.modbus.driver import settings_of
from drivers.modbus.profile import Profile, profiles

if TYPE_CHECKING:
    from pymodbus.pdu import ModbusPDU

    from lightctl.config import ControllerConfig

FAULT_KINDS = frozenset(
    {
        "offline", "slow", "error", "breaker_trip", "lamp_failure", "stuck_contactor",
        "door_open", "phase_loss", "supply_voltage",
    }
)
CHANNEL_FAULTS = frozenset({"breaker_trip", "lamp_failure", "stuck_contactor"})
LISTEN_BACKLOG = 128

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def raise_file_limit() -> int:
    """Raise RLIMIT_NOFILE to its hard limit (each simulated controller holds two sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _set_bit(registers: list[int], first_register: int, bit_address: int, value: bool) -> None:
    index, bit = bit_address // 16 - first_register, bit_address % 16
    if value:
        registers[index] |= 1 << bit
    else:
        registers[index] &= ~(1 << bit)


class SimulatedCabinet:
    """One controller: the model, its Modbus face, its faults and its request counter."""

    def __init__(self, controller: ControllerConfig, profile: Profile, host: str, port: int) -> None:
        self.controller = controller
        self.profile = profile
        self.unit = settings_of(controller).unit
        self.host, self.port = host, port
        loads: dict[int, tuple[float, bool]] = {}
        self.circuit_of: dict[str, int] = {}
        for ch in controller.channels:
            circuit = int(ch.point)
            self.circuit_of[ch.id] = circuit
            loads[circuit] = (ch.rated_w, profile.is_dimmable(circuit))
        for n in profile.dimmable:
            loads.setdefault(n, (0.0, True))
        self.model = Cabinet.build(profile.circuits, loads)
        self._holding: dict[int, tuple[str, int]] = {}
        if (hr := profile.holding_registers) is not None:
            for n in profile.dimmable:
                self._holding[hr.level_of(n)] = ("level", n)
                if (fade := hr.fade_of(n)) is not None:
                    self._holding[fade] = ("fade", n)
        self.pending: set[asyncio.Task[Any]] = set()
        self.requests = 0
        self.slow_s = 0.0
        self.error_code: ExcCodes | None = None
        self.offline = False
        self.server: ModbusTcpServer | None = None

    # ------------------------------------------------------------------ Modbus face

    def _device(self) -> SimDevice:
        p, n = self.profile, self.profile.circuits
        di = p.discrete_inputs
        bits = DataType.BITS
        coils = [SimData(p.coils.contactor, values=[False] * n, datatype=bits)]
        starts = (di.feedback, di.trip, di.door)
        ends = (di.feedback + n, di.trip + n, di.door + 1)
        discrete = [SimData(min(starts), values=[False] * (max(ends) - min(starts)), datatype=bits)]
        holding = [SimData(0, count=1, datatype=DataType.INVALID)]
        if p.holding_registers is not None and p.dimmable:
            used = set().union(*(addresses for _, addresses in p.addresses()["holding_registers"]))
            first = min(used)
            values = [0] * (max(used) + 1 - first)
            holding = [SimData(first, values=values, datatype=DataType.REGISTERS)]
        start, count = p.status_block()
        inputs = [SimData(start, count=count, values=0, datatype=DataType.REGISTERS)]
        return SimDevice(id=self.unit, simdata=(coils, discrete, holding, inputs), action=self._action)

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code in (5, 15) and values is not None:
            return self._write_coils(address, [bool(v) for v in values])
        if function_code in (6, 16) and values is not None:
            return self._write_registers(address, [int(v) for v in values])
        if function_code == 4:
            self._fill_inputs(start_address, registers)
        elif function_code == 1:
            for n, c in enumerate(self.model.circuits, 1):
                _set_bit(registers, start_address, self.profile.coils.contactor + n - 1, c.coil)
        elif function_code == 2:
            self._fill_discrete(start_address, registers)
        elif function_code == 3:
            self._fill_holding(start_address, registers)
        return None

    def _write_coils(self, address: int, bits: list[bool]) -> ExcCodes | None:
        first = self.profile.coils.contactor
        for i, on in enumerate(bits):
            circuit = address + i - first + 1
            if 1 <= circuit <= self.profile.circuits:
                self.model.set_coil(circuit, on)
        return None

    def _write_registers(self, address: int, values: list[int]) -> ExcCodes | None:
        hr = self.profile.holding_registers
        if hr is None:
            return ExcCodes.ILLEGAL_ADDRESS
        levels: list[tuple[int, int]] = []
        for i, value in enumerate(values):
            kind_circuit = self._holding.get(address + i)
            if kind_circuit is None:
                continue
            kind, circuit = kind_circuit
            if kind == "fade":
                self.model.set_fade(circuit, value * hr.fade_scale)
            else:
                if value > self.profile.level_max:
                    return ExcCodes.ILLEGAL_VALUE
                levels.append((circuit, value))
        for circuit, value in levels:  # fades first, so a level in the same request uses its fade
            self.model.set_level(circuit, value / self.profile.level_max)
        return None

    def _fill_discrete(self, first_register: int, registers: list[int]) -> None:
        di = self.profile.discrete_inputs
        for n, c in enumerate(self.model.circuits, 1):
            _set_bit(registers, first_register, di.feedback + n - 1, c.contactor)
            _set_bit(registers, first_register, di.trip + n - 1, c.tripped)
        _set_bit(registers, first_register, di.door, self.model.door_open)

    def _fill_holding(self, first_register: int, registers: list[int]) -> None:
        hr = self.profile.holding_registers
        if hr is None:
            return
        for n in self.profile.dimmable:
            c = self.model.circuits[n - 1]
            registers[hr.level_of(n) - first_register] = round(c.setpoint * self.profile.level_max)
            if (fade := hr.fade_of(n)) is not None:
                registers[fade - first_register] = round(c.fade_s / hr.fade_scale)

    def _fill_inputs(self, start: int, registers: list[int]) -> None:
        p, model = self.profile, self.model
        ir = p.input_registers
        now = model.advance()
        level_max = p.level_max
        feedback = trips = 0
        for n, c in enumerate(model.circuits, 1):
            if c.contactor:
                feedback |= 1 << (n - 1)
            if c.tripped:
                trips |= 1 << (n - 1)
            if ir.setpoint is not None:
                registers[ir.setpoint - start + n - 1] = round(c.setpoint * level_max) if c.dimmable else 0
            if ir.output_level is not None:
                registers[ir.output_level - start + n - 1] = round(c.level(now) * level_max) if c.dimmable else 0
            cp = ir.circuit_power
            self._put(registers, start, cp.address + (n - 1) * cp.registers, cp.width,
                      model.circuit_power(n, now) / cp.scale)
        volts, amps, watts = model.phases(now)
        alarms = model.alarms(volts)
        registers[ir.feedback_bits - start] = feedback
        registers[ir.trip_bits - start] = trips
        registers[ir.alarm_bits - start] = sum(1 << bit for name, bit in p.alarm_bits.items() if alarms[name])
        for phase in range(3):
            self._put(registers, start, ir.voltage.address + phase * ir.voltage.registers, ir.voltage.width,
                      volts[phase] / ir.voltage.scale)
            self._put(registers, start, ir.current.address + phase * ir.current.registers, ir.current.width,
                      amps[phase] / ir.current.scale)
        self._put(registers, start, ir.power.address, ir.power.width, sum(watts) / ir.power.scale)
        self._put(registers, start, ir.energy.address, ir.energy.width, model.energy_kwh / ir.energy.scale)

    def _put(self, registers: list[int], start: int, address: int, width: int, value: float) -> None:
        raw = max(0, round(value))
        i = address - start
        if width == 16:
            registers[i] = min(raw, 0xFFFF)
        else:
            registers[i], registers[i + 1] = self.profile.split32(min(raw, 0xFFFFFFFF))

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests += 1
        return pdu

    # ------------------------------------------------------------------ lifecycle

    def _socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        return sock

    async def listen(self, sock: socket.socket | None = None) -> None:
        """Serve on (host, port); port 0 picks a free one, kept for later restarts."""
        sock = sock or self._socket()
        server = ModbusTcpServer(self._device(), address=(self.host, self.port), trace_pdu=self._trace)
        server.context = _KnownUnits(server.context, self)  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        server.call_create = partial(loop.create_server, server.handle_new_connection, sock=sock, start_serving=True)
        try:
            await server.serve_forever(background=True)
        except BaseException:
            sock.close()
            raise
        self.server = server

    def drop(self) -> None:
        """Stop listening and drop every connection."""
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for task in self.pending:
            task.cancel()


class _KnownUnits:
    """The server's datastore wrapper: unknown unit ids, slow replies and exception replies."""

    def __init__(self, core: Any, cabinet: SimulatedCabinet) -> None:
        self.core = core
        self.cabinet = cabinet

    def device_ids(self) -> list[int]:
        ids: list[int] = self.core.device_ids()
        return ids

    async def _gate(self, device_id: int) -> ExcCodes | None:
        cabinet = self.cabinet
        if device_id != cabinet.unit:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if cabinet.slow_s > 0:
            task = asyncio.current_task()
            if task is not None:
                cabinet.pending.add(task)
            try:
                await asyncio.sleep(cabinet.slow_s)
            finally:
                cabinet.pending.discard(task)  # type: ignore[arg-type]
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
        known = profiles()
        self.cabinets: dict[str, SimulatedCabinet] = {}
        for ctrl in controllers:
            settings = settings_of(ctrl)
            port = 0 if any_port else settings.port
            self.cabinets[ctrl.id] = SimulatedCabinet(ctrl, known[ctrl.profile], _bind_host(settings.host), port)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        raise_file_limit()
        try:
            for cabinet in self.cabinets.values():
                await cabinet.listen()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = [task for cabinet in self.cabinets.values() for task in cabinet.pending]
        for cabinet in self.cabinets.values():
            cabinet.drop()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0)  # let the transports finish closing

    async def settle(self) -> None:
        """Wait until every pending restart (after clearing ``offline``) listens again."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def endpoints(self) -> Mapping[str, Mapping[str, Any]]:
        return {cid: {"host": c.host, "port": c.port} for cid, c in self.cabinets.items()}

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
            cabinet.drop()
        elif kind == "slow":
            cabinet.slow_s = 1.0 if fault.value is None else float(fault.value)
        elif kind == "error":
            cabinet.error_code = ExcCodes(4 if fault.value is None else int(fault.value))
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

    def clear(self, controller_id: str, kind: str | None = None) -> None:
        cabinet = self.cabinet(controller_id)
        model = cabinet.model
        kinds = FAULT_KINDS if kind is None else {kind}
        if "offline" in kinds and cabinet.offline:
            cabinet.offline = False
            sock = cabinet._socket()  # bound and listening now: clients queue until it serves
            task = asyncio.get_running_loop().create_task(cabinet.listen(sock))
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

    def request_count(self, controller_id: str) -> int:
        return self.cabinet(controller_id).requests
