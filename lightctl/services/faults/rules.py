"""The fault rules: pure functions of (controller spec, desired state, reading, previous memory).

``evaluate`` turns one complete reading into the conditions present now, each with the evidence
measured, and the memory the next reading needs (readings running below the lamp power ratio,
readings running burning while commanded off, which voltage and current limits are crossed, for
the deadband). ``judges`` says whether a reading could have seen a condition at all: a rule that
needs the lamps on (lamp failure) or off (burning while off) judges nothing when the desired state
says otherwise, when the channel is its owner's (handed back), or while a show drives the
controller; an absent condition that was not judged leaves its fault as it is.

The rules run for every reading (500 a second at 5,000 controllers polled every 10 s), so the
common case, a healthy controller, touches each channel once and allocates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lightctl.model.desired import Desired
from lightctl.model.values import ChannelReading, ChannelState, ControllerReading, FaultKind
from lightctl.services.faults.catalogue import CONTROLLER_FLAGS, TIMED
from lightctl.services.faults.spec import ChannelSpec, ControllerSpec

K = FaultKind
Key = tuple[FaultKind, str | None]
"""A condition on a controller: its kind and channel (None: the controller itself)."""

PHASES = (("voltage_l1_v", "current_l1_a", "A"), ("voltage_l2_v", "current_l2_a", "B"), ("voltage_l3_v", "current_l3_a", "C"))
LEVEL_SETTLED = 2.0
"""Percent: a channel whose read level is this close to the commanded one is at its level."""
VOLTAGE_KINDS = frozenset({K.SUPPLY_LOSS, K.PHASE_LOSS, K.OVER_VOLTAGE, K.UNDER_VOLTAGE})
FLAG_EVIDENCE = {
    K.DOOR_OPEN: "door contact open",
    K.CABLE_THEFT: "cable-theft input active",
    K.PHASE_LOSS: "the controller reports phase loss",
    K.OVER_VOLTAGE: "the controller reports over-voltage",
    K.UNDER_VOLTAGE: "the controller reports under-voltage",
    K.OVER_CURRENT: "the controller reports over-current",
    K.LEAKAGE: "leakage alarm input active",
    K.DEVICE_FAULT: "the device reports a fault",
}


@dataclass(frozen=True, slots=True)
class Memory:
    low_power: Mapping[str, int]
    """Per channel: readings running whose power is below the lamp ratio."""
    burning: Mapping[str, int]
    """Per channel: readings running drawing power (or closed) while commanded off."""
    over_v: bool = False
    under_v: bool = False
    over_a: bool = False


EMPTY = Memory({}, {})


@dataclass(frozen=True, slots=True)
class Findings:
    present: dict[Key, str]
    """Conditions present now, with their evidence."""
    memory: Memory


def watts(value: float) -> str:
    return f"{value / 1000:.1f} kW" if value >= 1000 else f"{value:.0f} W"


def lamps_off(want: Desired | None) -> bool:
    return isinstance(want, ChannelState) and not (want.on and want.level > 0)


def _settled(got: ChannelReading, want: ChannelState) -> bool:
    """The channel is switched on at the commanded level (as far as the device tells)."""
    return got.on is not False and (got.level is None or abs(got.level - want.level) <= LEVEL_SETTLED)


def judges(spec: ControllerSpec, desired: Mapping[str, Desired], reading: ControllerReading, held: bool, key: Key) -> bool:
    """Could this reading have seen the condition ``key``? (see the module's docstring)"""
    kind, channel = key
    if kind in TIMED or not reading.complete:
        return False
    if channel is None:
        return True
    got = reading.channels.get(channel)
    if got is None:
        return False
    if kind is K.LAMP_FAILURE:
        want = desired.get(channel)
        return not held and isinstance(want, ChannelState) and want.on and want.level > 0 and _settled(got, want)
    if kind is K.STUCK_CONTACTOR:
        return not held and lamps_off(desired.get(channel)) and got.held_by is None
    return True


def evaluate(
    spec: ControllerSpec, desired: Mapping[str, Desired], reading: ControllerReading, memory: Memory, held: bool
) -> Findings:
    """The conditions a complete reading shows (see the module's docstring)."""
    present: dict[Key, str] = {}
    flags = reading.faults
    if flags:
        for kind in flags & CONTROLLER_FLAGS:
            # a gateway's or PLC's summary of its channels' faults is theirs, not its own
            if kind is K.DEVICE_FAULT and any(K.DEVICE_FAULT in got.faults for got in reading.channels.values()):
                continue
            present[(kind, None)] = FLAG_EVIDENCE[kind]
    measured = reading.measurements
    over_v, under_v, over_a = memory.over_v, memory.under_v, memory.over_a
    if measured:
        over_v, under_v, over_a = _supply(spec, measured, memory, present)
    low, burning = memory.low_power, memory.burning
    for channel_id, got in reading.channels.items():
        ch = spec.channels.get(channel_id)
        if ch is None:
            continue
        if got.faults:
            _channel_flags(ch, got, measured, present)
        want = desired.get(channel_id)
        if held or not isinstance(want, ChannelState):
            if low.get(channel_id) or burning.get(channel_id):
                low, burning = _set(low, channel_id, 0), _set(burning, channel_id, 0)
            continue
        if want.on and want.level > 0:
            if burning.get(channel_id):
                burning = _set(burning, channel_id, 0)
            run = _low_power(spec, ch, got, want, measured)
            if run is not None:
                count = low.get(channel_id, 0) + 1
                low = _set(low, channel_id, count)
                if count >= spec.lamp_readings:  # measured: more telling than the device's flag
                    present[(K.LAMP_FAILURE, channel_id)] = run
            elif low.get(channel_id):
                low = _set(low, channel_id, 0)
        else:
            if low.get(channel_id):
                low = _set(low, channel_id, 0)
            drawn = None if got.held_by is not None else _burning(spec, ch, got)
            if drawn is not None:
                count = burning.get(channel_id, 0) + 1
                burning = _set(burning, channel_id, count)
                if count >= spec.off_readings:
                    present[(K.STUCK_CONTACTOR, channel_id)] = drawn
            elif burning.get(channel_id):
                burning = _set(burning, channel_id, 0)
    m = memory
    if low is not m.low_power or burning is not m.burning or (over_v, under_v, over_a) != (m.over_v, m.under_v, m.over_a):
        m = Memory(low, burning, over_v, under_v, over_a)
    return Findings(present, m)


def _set(runs: Mapping[str, int], channel_id: str, count: int) -> Mapping[str, int]:
    """Runs with one channel's count changed (a new mapping: memories are values)."""
    out = dict(runs)
    if count:
        out[channel_id] = count
    else:
        out.pop(channel_id, None)
    return out


def _channel_flags(ch: ChannelSpec, got: ChannelReading, measured: Mapping[str, float], present: dict[Key, str]) -> None:
    faults = got.faults
    if K.BREAKER_TRIP in faults:
        present[(K.BREAKER_TRIP, ch.id)] = "breaker tripped"
    if K.LAMP_FAILURE in faults:
        failed = measured.get(ch.lamp_failures_key)
        present[(K.LAMP_FAILURE, ch.id)] = (
            f"{failed:g} gear report lamp failure" if failed else "the device reports lamp failure"
        )
    if K.GEAR_FAILURE in faults:
        failed, missing = measured.get(ch.gear_failures_key), measured.get(ch.gear_missing_key)
        parts = []
        if missing:
            parts.append(f"{missing:g} gear not answering")
        if failed:
            parts.append(f"{failed:g} gear report a failure")
        present[(K.GEAR_FAILURE, ch.id)] = ", ".join(parts) or "control gear not answering"
    if K.DEVICE_FAULT in faults:
        present[(K.DEVICE_FAULT, ch.id)] = "the device reports a fault on this channel"
    if K.STUCK_CONTACTOR in faults:
        present[(K.STUCK_CONTACTOR, ch.id)] = "the device reports its contactor stuck"


def _low_power(
    spec: ControllerSpec, ch: ChannelSpec, got: ChannelReading, want: ChannelState, measured: Mapping[str, float]
) -> str | None:
    """Evidence of lamps drawing too little at the commanded level, or None."""
    power = got.power_w
    if power is None or ch.rated_w <= 0 or not _settled(got, want):
        return None
    level = measured.get(ch.output_key, want.level)
    expected = ch.rated_w * level / 100.0
    if expected <= 0 or power >= spec.lamp_ratio * expected:
        return None
    return f"{watts(power)} of {watts(expected)} expected at {level:g}%"


def _burning(spec: ControllerSpec, ch: ChannelSpec, got: ChannelReading) -> str | None:
    """Evidence of a circuit burning while commanded off, or None."""
    power = got.power_w
    if power is not None:
        limit = max(spec.off_w, spec.off_ratio * ch.rated_w)
        return f"drawing {watts(power)} while commanded off" if power > limit else None
    return "contactor closed while commanded off" if got.on else None


def _phase(phase: str) -> str:
    return f"phase {phase} " if phase else ""


def _supply(
    spec: ControllerSpec, measured: Mapping[str, float], memory: Memory, present: dict[Key, str]
) -> tuple[bool, bool, bool]:
    """Voltage and current conditions from the measurements (over the device's own flags, whose
    limits are not the site's); returns which limits are crossed now, for the deadband."""
    volts: list[tuple[str, float]] = []
    amps: list[tuple[str, float]] = []
    for vkey, akey, phase in PHASES:
        v = measured.get(vkey)
        if v is not None:
            volts.append((phase, v))
        a = measured.get(akey)
        if a is not None:
            amps.append((phase, a))
    if not volts and (single := measured.get("voltage_v")) is not None:
        volts.append(("", single))
    over_v = under_v = over_a = False
    if volts:
        for kind in VOLTAGE_KINDS:
            present.pop((kind, None), None)
        dead = [phase for phase, v in volts if v < spec.dead_v]
        live = [(phase, v) for phase, v in volts if v >= spec.dead_v]
        if not live:
            named = ", ".join(p for p, _ in volts if p)
            present[(K.SUPPLY_LOSS, None)] = f"phases {named} at 0 V" if named else f"{volts[0][1]:.0f} V"
        else:
            if dead:
                others = ", ".join(f"{p} {v:.0f} V" for p, v in live)
                present[(K.PHASE_LOSS, None)] = f"phase {', '.join(dead)} 0 V ({others})"
            phase, highest = max(live, key=lambda pv: pv[1])
            limit = spec.over_v - spec.deadband_v if memory.over_v else spec.over_v
            if highest > limit:
                over_v = True
                present[(K.OVER_VOLTAGE, None)] = f"{_phase(phase)}{highest:.1f} V > {spec.over_v:g} V"
            phase, lowest = min(live, key=lambda pv: pv[1])
            limit = spec.under_v + spec.deadband_v if memory.under_v else spec.under_v
            if lowest < limit:
                under_v = True
                present[(K.UNDER_VOLTAGE, None)] = f"{_phase(phase)}{lowest:.1f} V < {spec.under_v:g} V"
    if amps:
        phase, highest = max(amps, key=lambda pa: pa[1])
        limit = spec.over_a * 0.95 if memory.over_a else spec.over_a
        if highest > limit:
            over_a = True
            present[(K.OVER_CURRENT, None)] = f"phase {phase} {highest:.1f} A > {spec.over_a:g} A"
    leakage = measured.get("leakage_ma")
    if leakage is not None and leakage > spec.leakage_ma:
        present[(K.LEAKAGE, None)] = f"leakage {leakage:.0f} mA > {spec.leakage_ma:g} mA"
    return over_v, under_v, over_a
