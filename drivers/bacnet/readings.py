"""What a building's read values say about its channels: on, level, who holds the output, whether
the centre's slot is empty, faults. Pure functions of the values read (services.decode_rpm /
decode_rp give them, keyed by ``(type,instance, property)``); no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from bacpypes3.basetypes import Reliability

from drivers.bacnet import services
from drivers.bacnet.bacpypes3_internals import chosen
from drivers.bacnet.profile import ObjectRef, Profile
from drivers.bacnet.settings import BacnetSettings
from lightctl.model.values import ChannelReading, FaultKind

Values = Mapping[tuple[str, str], Any]

RELIABILITY_FAULTS = {
    "lampFailure": FaultKind.LAMP_FAILURE,
    "tripped": FaultKind.BREAKER_TRIP,
}


def confirm_props(profile: Profile) -> tuple[str, ...]:
    """What a read-back asks of each channel object: the present value and who holds it. With
    current-command-priority that is one element of the priority array, not all sixteen (whose
    decoding dominates a read-back's cost)."""
    if profile.current_command_priority:
        return ("presentValue", "currentCommandPriority")
    return ("presentValue", "priorityArray")


def _ok(value: Any) -> TypeGuard[Any]:
    """Read, and not refused."""
    return value is not None and not services.is_error(value)


def as_sent(ref: ObjectRef, values: Values, sent: Any) -> bool:
    """Does the present value read as what we last wrote?"""
    present = values.get((str(ref), "presentValue"))
    if not _ok(present) or sent is None:
        return False
    if isinstance(sent, float | int) and not isinstance(sent, bool):
        return abs(float(present) - float(sent)) < 1e-3
    return str(present) == str(sent)


def held_without_slot(ref: ObjectRef, values: Values, priority: int) -> bool:
    """Someone above ``priority`` holds the output, and our own slot was not read."""
    current = values.get((str(ref), "currentCommandPriority"))
    if not _ok(current) or current.unsigned is None:
        return False
    return int(current.unsigned) < priority


def channel_reading(
    ref: ObjectRef, values: Values, settings: BacnetSettings, profile: Profile, scene_sent: tuple[int, float] | None
) -> ChannelReading:
    """One channel's reading. ``scene_sent``: for a scene channel, the state we last commanded and
    the level it stood for (a scene number cannot hold a level of its own)."""
    key = str(ref)
    present = values.get((key, "presentValue"))
    if not _ok(present):
        return ChannelReading()
    priority = settings.priority
    ours = None
    held_by = None
    holder: tuple[int, Any] | None = None
    array = values.get((key, "priorityArray"))
    if _ok(array):
        ours = services.slot_value(array, priority)
        holder = services.priority_holder(array)
    slot = values.get((key, f"priorityArray[{priority}]"))
    if _ok(slot):
        ours = None if slot.null is not None else chosen(slot)
    current = values.get((key, "currentCommandPriority"))
    if _ok(current):
        if current.unsigned is None:  # nobody commands it: relinquish default
            holder = None
        else:
            holder = (int(current.unsigned), present)
            if holder[0] == priority:
                ours = present
    if holder is not None and holder[0] < priority:
        held_by = f"{settings.who(holder[0])}: {show(ref, holder[1], profile)}"
    value = ours if ours is not None else present
    on, level = state_of(ref, value, profile)
    if ref.kind == "multi-state-value" and on and scene_sent is not None and scene_sent[0] == int(value):
        level = scene_sent[1]
    faults: frozenset[FaultKind] = frozenset()
    reliability = values.get((key, "reliability"))
    if _ok(reliability):
        name = Reliability(reliability).attr
        if name != "noFaultDetected":
            faults = frozenset({RELIABILITY_FAULTS.get(name, FaultKind.DEVICE_FAULT)})
    power = values.get((key, "instantaneousPower"))
    power_w = float(power) * 1000.0 if _ok(power) else None
    return ChannelReading(on=on, level=level, power_w=power_w, faults=faults, held_by=held_by,
                          released=released(key, values, priority))


def released(key: str, values: Values, priority: int) -> bool | None:
    """Is our slot of the priority array NULL? Known from the array, from our slot read on
    its own, or from current-command-priority (the highest slot in use: one below ours, or
    none, means ours is empty). None when the reading does not tell."""
    slot = values.get((key, f"priorityArray[{priority}]"))
    if _ok(slot):
        return bool(slot.null is not None)
    array = values.get((key, "priorityArray"))
    if _ok(array):
        return services.slot_value(array, priority) is None
    current = values.get((key, "currentCommandPriority"))
    if _ok(current):
        if current.unsigned is None or int(current.unsigned) > priority:
            return True
        if int(current.unsigned) == priority:
            return False
    return None


def state_of(ref: ObjectRef, value: Any, profile: Profile) -> tuple[bool, float | None]:
    if ref.kind == "binary-output":  # a relay: on or off, no level to report
        return str(value) == "active" or value == 1, None
    if ref.kind == "multi-state-value":
        state = int(value)
        return state > 1, profile.scene_level(state)
    level = float(value)
    return level > 0, level


def show(ref: ObjectRef, value: Any, profile: Profile) -> str:
    """A value as operators read it: ``30%``, ``on``, ``scene 3 (holiday)``."""
    if ref.kind == "multi-state-value":
        state = int(value)
        states = profile.scene_states
        return f"scene {state}" + (f" ({states[state - 1]})" if 0 < state <= len(states) else "")
    if ref.kind == "binary-output":
        return "on" if state_of(ref, value, profile)[0] else "off"
    return f"{float(value):g}%"


def scaled(values: Values, ref: ObjectRef | None, scale: float) -> float | None:
    """A meter's present value times its scale, or None (no meter, or it could not be read)."""
    if ref is None:
        return None
    raw = values.get((str(ref), "presentValue"))
    return float(raw) * scale if _ok(raw) else None
