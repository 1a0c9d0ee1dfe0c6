"""Modbus vocabulary of a cabinet controller: batch compilation and status-block decoding.

Pure functions over a profile and a controller's channel map, shared by the driver, the floor client
(so their requests cannot drift) and the simulator's tests. Requests are encoded with pymodbus's own
PDU classes once, at compile time; the transport only adds the MBAP header.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from pymodbus.pdu.bit_message import WriteMultipleCoilsRequest
from pymodbus.pdu.register_message import ReadInputRegistersRequest, WriteMultipleRegistersRequest

from drivers.base import (
    ChannelId,
    ChannelReading,
    ChannelState,
    ControllerReading,
    FaultKind,
    PlannedOperation,
)
from drivers.modbus.profile import Profile

FC_READ_INPUT_REGISTERS = 4
FC_WRITE_COILS = 15
FC_WRITE_REGISTERS = 16
MAX_WRITE_COILS = 1968
MAX_WRITE_REGISTERS = 123
MAX_READ_REGISTERS = 125

FUNCTION_NAMES = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    FC_READ_INPUT_REGISTERS: "read_input_registers",
    FC_WRITE_COILS: "write_coils",
    FC_WRITE_REGISTERS: "write_registers",
}

ALARM_FAULTS: dict[str, FaultKind] = {
    "door": FaultKind.DOOR_OPEN,
    "phase_loss": FaultKind.PHASE_LOSS,
    "over_voltage": FaultKind.OVER_VOLTAGE,
    "under_voltage": FaultKind.UNDER_VOLTAGE,
}


@dataclass(frozen=True, slots=True)
class Request:
    """One Modbus request: ``pdu`` is the function code plus data, ready for an MBAP header."""

    function_code: int
    address: int
    count: int
    values: tuple[int, ...]
    channels: tuple[ChannelId, ...]
    pdu: bytes

    @property
    def name(self) -> str:
        return FUNCTION_NAMES.get(self.function_code, f"FC{self.function_code}")

    def describe(self) -> str:
        return f"{self.name} (FC{self.function_code:02d}) at {self.address}..{self.address + self.count - 1}"

    def planned(self, table: str) -> PlannedOperation:
        return PlannedOperation(
            kind=self.name,
            target=f"{table} {self.address}..{self.address + self.count - 1}",
            channels=self.channels,
            detail=f"FC{self.function_code:02d}, {self.count} {'coils' if self.function_code == 15 else 'registers'}",
        )


def write_coils(address: int, bits: list[bool], channels: tuple[ChannelId, ...]) -> Request:
    pdu = WriteMultipleCoilsRequest(address=address, bits=bits)
    return Request(FC_WRITE_COILS, address, len(bits), tuple(int(b) for b in bits), channels,
                   bytes([FC_WRITE_COILS]) + pdu.encode())


def write_registers(address: int, values: list[int], channels: tuple[ChannelId, ...]) -> Request:
    pdu = WriteMultipleRegistersRequest(address=address, registers=values)
    return Request(FC_WRITE_REGISTERS, address, len(values), tuple(values), channels,
                   bytes([FC_WRITE_REGISTERS]) + pdu.encode())


def read_input_registers(address: int, count: int) -> Request:
    pdu = ReadInputRegistersRequest(address=address, count=count)
    return Request(FC_READ_INPUT_REGISTERS, address, count, (), (), bytes([FC_READ_INPUT_REGISTERS]) + pdu.encode())


@dataclass(frozen=True, slots=True)
class ChannelMap:
    """A controller's channels on its profile's circuits (validated config: one channel per circuit)."""

    profile: Profile
    circuit_of: Mapping[ChannelId, int]
    dimmable: frozenset[ChannelId]

    @classmethod
    def build(cls, profile: Profile, channels: Iterable[tuple[ChannelId, int, bool]]) -> ChannelMap:
        circuit_of: dict[ChannelId, int] = {}
        dimmable: set[ChannelId] = set()
        for channel_id, circuit, wants_dimming in channels:
            circuit_of[channel_id] = circuit
            if wants_dimming and profile.is_dimmable(circuit):
                dimmable.add(channel_id)
        return cls(profile, circuit_of, frozenset(dimmable))


def _runs(cells: Mapping[int, tuple[int, ChannelId | None]], limit: int) -> list[tuple[int, list[int], list[ChannelId]]]:
    """Contiguous runs of (address -> (value, channel)), split at gaps and at ``limit`` values."""
    runs: list[tuple[int, list[int], list[ChannelId]]] = []
    for address in sorted(cells):
        value, channel = cells[address]
        if runs and runs[-1][0] + len(runs[-1][1]) == address and len(runs[-1][1]) < limit:
            runs[-1][1].append(value)
        else:
            runs.append((address, [value], []))
        if channel is not None and channel not in runs[-1][2]:
            runs[-1][2].append(channel)
    return runs


def level_raw(profile: Profile, level: float) -> int:
    return max(0, min(profile.level_max, round(level * profile.level_max / 100.0)))


def compile_batch(cmap: ChannelMap, states: Mapping[ChannelId, ChannelState]) -> tuple[list[Request], list[Request]]:
    """(register writes, coil writes) for a forced batch: every channel given is written.

    Levels (and fade times) are written for channels switched on; a channel switched off only
    has its level written when that fills a gap between others, so it never costs a request.
    Registers go first so that a contactor closes onto the new level, not the old one.
    """
    profile = cmap.profile
    hr = profile.holding_registers
    coils: dict[int, tuple[int, ChannelId | None]] = {}
    wanted: dict[int, tuple[int, ChannelId | None]] = {}
    fillers: dict[int, tuple[int, ChannelId | None]] = {}
    for channel_id, state in states.items():
        circuit = cmap.circuit_of[channel_id]
        coils[profile.coils.contactor + circuit - 1] = (int(state.on), channel_id)
        if hr is None or channel_id not in cmap.dimmable:
            continue
        target = wanted if state.on else fillers
        target[hr.level_of(circuit)] = (level_raw(profile, state.level), channel_id)
        if (fade_address := hr.fade_of(circuit)) is not None:
            fade = max(0, min(0xFFFF, round(state.fade_s / hr.fade_scale)))
            target[fade_address] = (fade, channel_id)
    if wanted and fillers:
        low, high = min(wanted), max(wanted)
        wanted.update({a: v for a, v in fillers.items() if low < a < high})
    register_writes = [
        write_registers(address, values, tuple(chs)) for address, values, chs in _runs(wanted, MAX_WRITE_REGISTERS)
    ]
    coil_writes = [
        write_coils(address, [bool(v) for v in values], tuple(chs))
        for address, values, chs in _runs(coils, MAX_WRITE_COILS)
    ]
    return register_writes, coil_writes


def status_request(profile: Profile) -> Request:
    start, count = profile.status_block()
    return read_input_registers(start, count)


def _u(profile: Profile, regs: list[int], start: int, address: int, width: int) -> int:
    i = address - start
    return regs[i] if width == 16 else profile.join32(regs[i], regs[i + 1])


def decode_status(
    cmap: ChannelMap, regs: list[int], channels: Collection[ChannelId] | None = None
) -> ControllerReading:
    """Turn the status block into a reading, for ``channels`` (all when None)."""
    profile = cmap.profile
    ir = profile.input_registers
    start, _ = profile.status_block()
    feedback = regs[ir.feedback_bits - start]
    trips = regs[ir.trip_bits - start]
    alarms = regs[ir.alarm_bits - start]
    level_max = profile.level_max
    cp = ir.circuit_power
    readings: dict[ChannelId, ChannelReading] = {}
    wanted = cmap.circuit_of if channels is None else {c: cmap.circuit_of[c] for c in channels}
    for channel_id, circuit in wanted.items():
        bit = 1 << (circuit - 1)
        level = None
        if channel_id in cmap.dimmable and ir.setpoint is not None:
            level = regs[ir.setpoint - start + circuit - 1] * 100.0 / level_max
        power = _u(profile, regs, start, cp.address + (circuit - 1) * cp.registers, cp.width) * cp.scale
        readings[channel_id] = ChannelReading(
            on=bool(feedback & bit),
            level=level,
            power_w=power,
            faults=frozenset({FaultKind.BREAKER_TRIP}) if trips & bit else frozenset(),
        )
    measurements: dict[str, float] = {}
    for name, unit in (("voltage", "v"), ("current", "a")):
        field = getattr(ir, name)
        for phase in range(3):
            raw = _u(profile, regs, start, field.address + phase * field.registers, field.width)
            measurements[f"{name}_l{phase + 1}_{unit}"] = round(raw * field.scale, 6)
    if ir.output_level is not None:
        for channel_id, circuit in wanted.items():
            if channel_id in cmap.dimmable:
                raw = regs[ir.output_level - start + circuit - 1]
                measurements[f"output_{channel_id}_pct"] = raw * 100.0 / level_max
    faults = frozenset(ALARM_FAULTS[name] for name, bit in profile.alarm_bits.items() if alarms & (1 << bit))
    if trips:
        faults |= {FaultKind.BREAKER_TRIP}
    return ControllerReading(
        at=time.time(),
        channels=readings,
        power_w=_u(profile, regs, start, ir.power.address, ir.power.width) * ir.power.scale,
        energy_kwh=_u(profile, regs, start, ir.energy.address, ir.energy.width) * ir.energy.scale,
        faults=faults,
        measurements=measurements,
    )
