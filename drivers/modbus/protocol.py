"""Modbus vocabulary of a cabinet controller: batch compilation and status-block decoding.

Pure functions over a profile and a controller's channel map, shared by the driver, the floor client
(so their requests cannot drift) and the simulator's tests. Requests are encoded with pymodbus's own
PDU classes once, at compile time; the transport only adds the MBAP header.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from pymodbus.pdu.bit_message import WriteMultipleCoilsRequest
from pymodbus.pdu.register_message import ReadInputRegistersRequest, WriteMultipleRegistersRequest

from drivers.modbus.profile import Profile
from lightctl.model.values import (
    ChannelId,
    ChannelReading,
    ChannelState,
    ControllerReading,
    FaultKind,
    PlannedOperation,
)

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
    "cable_theft": FaultKind.CABLE_THEFT,
    "leakage": FaultKind.LEAKAGE,
    "over_current": FaultKind.OVER_CURRENT,
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
    has its registers written when they close a whole gap between others: that saves a request
    and never adds one.
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
        for low, high in itertools.pairwise(sorted(wanted)):
            gap = range(low + 1, high)
            if gap and all(a in fillers for a in gap):
                wanted.update({a: fillers[a] for a in gap})
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


class StatusDecoder:
    """Decodes a controller's status block; offsets are worked out once, not per reading."""

    def __init__(self, cmap: ChannelMap) -> None:
        profile = cmap.profile
        ir = profile.input_registers
        start, _ = profile.status_block()
        self.big = profile.word_order == "big"
        self.feedback, self.trips, self.alarms = ir.feedback_bits - start, ir.trip_bits - start, ir.alarm_bits - start
        self.level_scale = 100.0 / profile.level_max
        cp = ir.circuit_power
        self.channels: list[tuple[ChannelId, int, int | None, tuple[int, int, float]]] = []
        self.outputs: list[tuple[ChannelId, str, int]] = []
        for channel_id, circuit in cmap.circuit_of.items():
            dimmable = channel_id in cmap.dimmable
            setpoint = ir.setpoint - start + circuit - 1 if dimmable and ir.setpoint is not None else None
            power = (cp.address - start + (circuit - 1) * cp.registers, cp.width, cp.scale)
            self.channels.append((channel_id, 1 << (circuit - 1), setpoint, power))
            if dimmable and ir.output_level is not None:
                self.outputs.append((channel_id, f"output_{channel_id}_pct", ir.output_level - start + circuit - 1))
        self.measurements: list[tuple[str, tuple[int, int, float]]] = []
        for name, unit in (("voltage", "v"), ("current", "a")):
            field = getattr(ir, name)
            for phase in range(3):
                spot = (field.address - start + phase * field.registers, field.width, field.scale)
                self.measurements.append((f"{name}_l{phase + 1}_{unit}", spot))
        self.power = (ir.power.address - start, ir.power.width, ir.power.scale)
        self.energy = (ir.energy.address - start, ir.energy.width, ir.energy.scale)
        self.alarm_faults = [(1 << bit, ALARM_FAULTS[name]) for name, bit in profile.alarm_bits.items()]
        self._interned: dict[tuple[int, ...], ChannelReading] = {}
        """Channel readings are immutable values that repeat (a lit circuit reads the same
        again and again): reusing them saves most of the decoding time of a read-back."""

    def _value(self, regs: list[int], spot: tuple[int, int, float]) -> float:
        i, width, scale = spot
        if width == 16:
            return regs[i] * scale
        first, second = regs[i], regs[i + 1]
        return ((first << 16 | second) if self.big else (second << 16 | first)) * scale

    def decode(self, regs: list[int], channels: Collection[ChannelId] | None = None) -> ControllerReading:
        """A reading of ``channels`` (all when None) from the registers of the status block."""
        feedback, trips, alarms = regs[self.feedback], regs[self.trips], regs[self.alarms]
        wanted = None if channels is None else set(channels)
        value = self._value
        readings: dict[ChannelId, ChannelReading] = {}
        interned = self._interned
        if len(interned) > INTERNED_READINGS:
            interned.clear()
        for channel_id, bit, setpoint, power in self.channels:
            if wanted is not None and channel_id not in wanted:
                continue
            i = power[0]
            key = (
                feedback & bit,
                trips & bit,
                -1 if setpoint is None else regs[setpoint],
                regs[i],
                regs[i + 1] if power[1] == 32 else 0,
            )
            reading = interned.get(key)
            if reading is None:
                reading = interned[key] = ChannelReading(
                    on=bool(feedback & bit),
                    level=None if setpoint is None else regs[setpoint] * self.level_scale,
                    power_w=value(regs, power),
                    faults=TRIPPED if trips & bit else NO_FAULTS,
                )
            readings[channel_id] = reading
        measurements = {name: round(value(regs, spot), 6) for name, spot in self.measurements}
        for channel_id, name, index in self.outputs:
            if wanted is None or channel_id in wanted:
                measurements[name] = regs[index] * self.level_scale
        faults = frozenset(kind for mask, kind in self.alarm_faults if alarms & mask)
        if trips:
            faults |= TRIPPED
        return ControllerReading(
            at=time.time(),
            channels=readings,
            power_w=value(regs, self.power),
            energy_kwh=value(regs, self.energy),
            faults=faults,
            measurements=measurements,
        )


INTERNED_READINGS = 256
TRIPPED = frozenset({FaultKind.BREAKER_TRIP})
NO_FAULTS: frozenset[FaultKind] = frozenset()


def decode_status(
    cmap: ChannelMap, regs: list[int], channels: Collection[ChannelId] | None = None
) -> ControllerReading:
    """Turn the status block into a reading, for ``channels`` (all when None)."""
    return StatusDecoder(cmap).decode(regs, channels)
