"""The physics of one simulated cabinet controller, independent of Modbus.

Time is evaluated lazily: a fade is a linear ramp stored as (from, to, start, duration) and energy
is integrated in closed form up to the moment somebody looks or something changes, so thousands of
idle cabinets cost nothing between requests (no timer task per device).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from drivers.simphysics import Ramp

NOMINAL_V = 226.0
PHASE_OFFSET_V = (0.0, -1.4, 0.9)
LOAD_DROP_V = 5.0
POWER_FACTOR = 0.95
OVER_VOLTAGE_V = 265.0
UNDER_VOLTAGE_V = 180.0
OVER_CURRENT_A = 100.0
NO_SUPPLY_V = 50.0
"""Below this supply the lamps go dark and draw nothing (a lost supply, not a low one)."""
LOAD_REFERENCE_W = 60_000.0


@dataclass(slots=True)
class Circuit:
    rated_w: float = 0.0
    dimmable: bool = False
    coil: bool = False
    contactor: bool = False
    tripped: bool = False
    stuck: bool = False
    failed: float = 0.0
    fade_s: float = 0.0
    ramp: Ramp = field(default_factory=Ramp)
    """The dimming output: its target is the setpoint, and it fades there over ``fade_s``."""

    @property
    def setpoint(self) -> float:
        return self.ramp.target

    def level(self, t: float) -> float:
        """Actual output 0..1 at time t (relay-only circuits are full or nothing)."""
        return self.ramp.level(t) if self.dimmable else 1.0

    def level_integral(self, a: float, b: float) -> float:
        """Integral of level() over [a, b], in level-seconds."""
        if not self.dimmable:
            return max(0.0, b - a)
        return self.ramp.integral(a, b)

    @property
    def energised(self) -> bool:
        return self.contactor and not self.tripped

    def load_w(self) -> float:
        return (1.0 - self.failed) * self.rated_w


@dataclass
class Cabinet:
    """One cabinet: ``circuits[n - 1]`` is circuit n; circuit n is on phase ((n - 1) % 3) + 1."""

    circuits: list[Circuit]
    clock: Callable[[], float] = time.monotonic
    energy_kwh: float = 0.0
    door_open: bool = False
    phase_lost: int = 0
    supply_v: float = NOMINAL_V
    cable_theft: bool = False
    leakage: bool = False
    fault_current_a: float = 0.0
    """Current drawn on phase A beyond the lamps' (a short, an overload): over-current."""
    _t: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._t = self.clock()

    @classmethod
    def build(cls, circuits: int, loads: Mapping[int, tuple[float, bool]], clock: Callable[[], float] = time.monotonic) -> Cabinet:
        """``loads``: circuit -> (rated watts of its luminaires, dimmable)."""
        made = []
        for n in range(1, circuits + 1):
            rated_w, dimmable = loads.get(n, (0.0, False))
            made.append(Circuit(rated_w=rated_w, dimmable=dimmable, ramp=Ramp(1.0, 1.0)))  # power-up default: full
        return cls(made, clock)

    # ------------------------------------------------------------------ time

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Account for the time so far, then follow another clock (tests, replays)."""
        self.advance()
        self.clock = clock
        self._t = clock()

    def advance(self) -> float:
        """Integrate energy up to now; call before any change of state. Returns now."""
        now = self.clock()
        a = self._t
        if now > a:
            joules = 0.0
            dead = self.phase_lost - 1 if self.supply_v >= NO_SUPPLY_V else -2
            for i, c in enumerate(self.circuits):
                if dead == -2:
                    break
                if c.contactor and not c.tripped and i % 3 != dead and c.rated_w:
                    joules += c.load_w() * c.level_integral(a, now)
            self.energy_kwh += joules / 3.6e6
            self._t = now
        return now

    def _phase_dead(self, circuit: int) -> bool:
        return self.supply_v < NO_SUPPLY_V or self.phase_lost == (circuit - 1) % 3 + 1

    # ------------------------------------------------------------------ commands

    def command(
        self,
        coils: Mapping[int, bool] | None = None,
        fades: Mapping[int, float] | None = None,
        levels: Mapping[int, float] | None = None,
    ) -> None:
        """Apply one request's changes at one instant: fade times first, then levels, then contactors."""
        now = self.advance()
        circuits = self.circuits
        for n, seconds in (fades or {}).items():
            circuits[n - 1].fade_s = max(0.0, seconds)
        for n, level in (levels or {}).items():
            c = circuits[n - 1]
            if c.dimmable:
                c.ramp.go(max(0.0, min(1.0, level)), now, c.fade_s)
        for n, on in (coils or {}).items():
            c = circuits[n - 1]
            c.coil = on
            if not c.stuck:
                c.contactor = on and not c.tripped

    def set_coil(self, circuit: int, on: bool) -> None:
        self.command(coils={circuit: on})

    def set_fade(self, circuit: int, seconds: float) -> None:
        self.command(fades={circuit: seconds})

    def set_level(self, circuit: int, level: float) -> None:
        self.command(levels={circuit: level})

    # ------------------------------------------------------------------ faults

    def trip(self, circuit: int, tripped: bool) -> None:
        self.advance()
        c = self.circuits[circuit - 1]
        c.tripped = tripped
        if tripped:
            c.contactor = False if not c.stuck else c.contactor
        elif not c.stuck:
            c.contactor = c.coil

    def stick(self, circuit: int, stuck: bool) -> None:
        self.advance()
        c = self.circuits[circuit - 1]
        c.stuck = stuck
        if not stuck:
            c.contactor = c.coil and not c.tripped

    def fail_lamps(self, circuit: int, fraction: float) -> None:
        self.advance()
        self.circuits[circuit - 1].failed = max(0.0, min(1.0, fraction))

    def set_supply(
        self,
        *,
        volts: float | None = None,
        phase_lost: int | None = None,
        door_open: bool | None = None,
        cable_theft: bool | None = None,
        leakage: bool | None = None,
        fault_current_a: float | None = None,
    ) -> None:
        self.advance()
        if volts is not None:
            self.supply_v = volts
        if phase_lost is not None:
            self.phase_lost = phase_lost
        if door_open is not None:
            self.door_open = door_open
        if cable_theft is not None:
            self.cable_theft = cable_theft
        if leakage is not None:
            self.leakage = leakage
        if fault_current_a is not None:
            self.fault_current_a = max(0.0, fault_current_a)

    # ------------------------------------------------------------------ measurements

    def circuit_power(self, circuit: int, t: float) -> float:
        c = self.circuits[circuit - 1]
        if not c.energised or self._phase_dead(circuit):
            return 0.0
        return c.load_w() * c.level(t)

    def powers(self, t: float) -> list[float]:
        """Active power of every circuit at time t, in circuit order."""
        return self.snapshot(t)[1]

    def snapshot(self, t: float) -> tuple[list[float], list[float]]:
        """(actual output 0..1, active power in W) of every circuit at time t, in circuit order."""
        dead = self.phase_lost - 1
        supplied = self.supply_v >= NO_SUPPLY_V
        levels, powers = [], []
        for i, c in enumerate(self.circuits):
            level = c.level(t)
            levels.append(level)
            powers.append(c.load_w() * level if supplied and c.contactor and not c.tripped and i % 3 != dead else 0.0)
        return levels, powers

    def phases(self, t: float, powers: list[float] | None = None) -> tuple[list[float], list[float], list[float]]:
        """(volts, amps, watts) per phase at time t."""
        if powers is None:
            powers = self.powers(t)
        watts = [sum(powers[0::3]), sum(powers[1::3]), sum(powers[2::3])]
        volts, amps = [], []
        for p in range(3):
            if self.phase_lost == p + 1:
                volts.append(0.0)
                amps.append(0.0)
                continue
            if self.supply_v < NO_SUPPLY_V:
                volts.append(max(0.0, self.supply_v))
                amps.append(0.0)
                continue
            v = self.supply_v + PHASE_OFFSET_V[p] - LOAD_DROP_V * min(1.0, watts[p] / LOAD_REFERENCE_W)
            v += 0.3 * math.sin(t / 23.0 + p * 2.1)
            volts.append(v)
            amps.append(watts[p] / (v * POWER_FACTOR) if v > 1 else 0.0)
        if self.fault_current_a and volts[0] > 1:
            amps[0] += self.fault_current_a
        return volts, amps, watts

    def alarm_word(self, volts: list[float], bits: Mapping[str, int], amps: list[float] | None = None) -> int:
        """The alarms as a bit field, ``bits`` giving each alarm's mask."""
        return sum(bits[name] for name, on in self.alarms(volts, amps).items() if on and name in bits)

    def alarms(self, volts: list[float], amps: list[float] | None = None) -> dict[str, bool]:
        live = [v for p, v in enumerate(volts) if self.phase_lost != p + 1]
        return {
            "door": self.door_open,
            "phase_loss": self.phase_lost != 0,
            "over_voltage": any(v > OVER_VOLTAGE_V for v in live),
            "under_voltage": any(v < UNDER_VOLTAGE_V for v in live),
            "cable_theft": self.cable_theft,
            "leakage": self.leakage,
            "over_current": any(a > OVER_CURRENT_A for a in amps or ()),
        }
