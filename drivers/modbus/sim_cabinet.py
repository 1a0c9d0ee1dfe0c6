"""The Modbus face of one simulated cabinet: its register tables and the ``action`` hook.

pymodbus keeps the tables; the hook makes the :class:`~drivers.modbus.device.Cabinet` model the
source of truth: writes change the model (and may be refused), reads are refreshed from it.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.modbus.device import Cabinet
from drivers.modbus.driver import modbus_settings
from drivers.modbus.profile import Profile, Scaled

if TYPE_CHECKING:
    from lightctl.model.installation import ControllerConfig

WRITE_TIMES_KEPT = 10_000
"""Arrival instants (time.monotonic) of the last writes, for measuring a show's beat."""


def _set_bit(registers: list[int], first_register: int, bit_address: int, value: bool) -> None:
    index, bit = bit_address // 16 - first_register, bit_address % 16
    if value:
        registers[index] |= 1 << bit
    else:
        registers[index] &= ~(1 << bit)


class SimulatedCabinet:
    """One controller: the model, its Modbus face, its faults and its request counter."""

    def __init__(self, controller: ControllerConfig, profile: Profile) -> None:
        self.controller = controller
        self.profile = profile
        self.unit = modbus_settings(controller).unit
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
        self.requests = 0
        self.write_times: deque[float] = deque(maxlen=WRITE_TIMES_KEPT)
        self._big = profile.word_order == "big"
        self._layout()
        self.slow_s = 0.0
        self.error_code: ExcCodes | None = None
        self.offline = False

    # ------------------------------------------------------------------ Modbus face

    def device(self) -> SimDevice:
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
        if function_code in (22, 23):
            return ExcCodes.ILLEGAL_FUNCTION  # mask write, read/write multiple: not in this device
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
        first, circuits = self.profile.coils.contactor, self.profile.circuits
        changes = {}
        for i, on in enumerate(bits):
            circuit = address + i - first + 1
            if 1 <= circuit <= circuits:
                changes[circuit] = on
        self.model.command(coils=changes)
        return None

    def _write_registers(self, address: int, values: list[int]) -> ExcCodes | None:
        hr = self.profile.holding_registers
        if hr is None:
            return ExcCodes.ILLEGAL_ADDRESS
        fades: dict[int, float] = {}
        levels: dict[int, float] = {}
        level_max = self.profile.level_max
        for i, value in enumerate(values):
            kind_circuit = self._holding.get(address + i)
            if kind_circuit is None:
                continue
            kind, circuit = kind_circuit
            if kind == "fade":
                fades[circuit] = value * hr.fade_scale
            elif value > level_max:
                return ExcCodes.ILLEGAL_VALUE
            else:
                levels[circuit] = value / level_max
        self.model.command(fades=fades, levels=levels)  # fades first: a level in this request uses its fade
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
        """Refresh the status block from the model (the hot path of every read-back)."""
        model = self.model
        now = model.advance()
        offset = self._input_start - start
        put = self._put
        setpoint, output, cp_spots, level_max = self._circuit_spots
        feedback = trips = 0
        levels, powers = model.snapshot(now)
        for i, c in enumerate(model.circuits):
            if c.contactor:
                feedback |= 1 << i
            if c.tripped:
                trips |= 1 << i
            if c.dimmable:
                if setpoint >= 0:
                    registers[offset + setpoint + i] = int(c.setpoint * level_max + 0.5)
                if output >= 0:
                    registers[offset + output + i] = int(levels[i] * level_max + 0.5)
            put(registers, offset, cp_spots[i], powers[i])
        volts, amps, watts = model.phases(now, powers)
        fb, tr, al, alarm_bits, volt_spots, amp_spots, power_spot, energy_spot = self._block_spots
        registers[offset + fb] = feedback
        registers[offset + tr] = trips
        registers[offset + al] = model.alarm_word(volts, alarm_bits, amps)
        for phase in range(3):
            put(registers, offset, volt_spots[phase], volts[phase])
            put(registers, offset, amp_spots[phase], amps[phase])
        put(registers, offset, power_spot, sum(watts))
        put(registers, offset, energy_spot, model.energy_kwh)

    def _layout(self) -> None:
        """Offsets into the status block, worked out once: (index, 32-bit?, 1 / scale) per value."""
        p = self.profile
        ir = p.input_registers
        start, _ = p.status_block()
        self._input_start = start

        def spot(field: Scaled, k: int = 0) -> tuple[int, bool, float]:
            return field.address - start + k * field.registers, field.width == 32, 1.0 / field.scale

        cp = ir.circuit_power
        self._circuit_spots = (
            -1 if ir.setpoint is None else ir.setpoint - start,
            -1 if ir.output_level is None else ir.output_level - start,
            [spot(cp, i) for i in range(p.circuits)],
            p.level_max,
        )
        self._block_spots = (
            ir.feedback_bits - start,
            ir.trip_bits - start,
            ir.alarm_bits - start,
            {str(name): 1 << bit for name, bit in p.alarm_bits.items()},
            [spot(ir.voltage, k) for k in range(3)],
            [spot(ir.current, k) for k in range(3)],
            spot(ir.power),
            spot(ir.energy),
        )

    def _put(self, registers: list[int], offset: int, spot: tuple[int, bool, float], value: float) -> None:
        i, wide, inverse = spot
        i += offset
        raw = int(value * inverse + 0.5) if value > 0 else 0
        if not wide:
            registers[i] = raw if raw < 0xFFFF else 0xFFFF
            return
        if raw > 0xFFFFFFFF:
            raw = 0xFFFFFFFF
        if self._big:
            registers[i], registers[i + 1] = raw >> 16, raw & 0xFFFF
        else:
            registers[i], registers[i + 1] = raw & 0xFFFF, raw >> 16
