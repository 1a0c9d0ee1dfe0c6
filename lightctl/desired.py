"""Desired state: a pure function of time and a few inputs (ARCHITECTURE.md section 3).

Layers, lowest first; a higher layer's rules win on the channels they select:
  default (off, or the schedule's ``default_scene``)  <  scheduled scene entries (schedules/)
  <  light show cue  <  operator override  <  emergency curtailment.
A scene may hand channels back to their owner (lightctl.handback.RELEASED) in any layer; a higher
layer's scene takes them back. A curtailment to off takes them back too and switches them off; a
curtailment that only dims leaves them to their owner (their level is not the centre's to know,
and a cap must never light what the owner keeps dark).
``resolve()`` does no I/O, so the daemon, the schedule preview and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from drivers.base import OFF, ChannelState
from lightctl.handback import Desired, Released
from lightctl.inventory import ChannelKey, Inventory
from scenes.model import SceneBook


@dataclass(frozen=True, slots=True)
class ActiveEntry:
    """A scene in force on a selector, and why (``weekday-night: sunset-10m``)."""

    scene: str
    target: str
    priority: int
    reason: str
    entry: str = ""
    """The schedule entry's id (a show may be started by an entry coming into force)."""


class ScheduleSource(Protocol):
    """What schedules/ gives the core. Pure and cheap: called on every reconcile."""

    def active(self, instant: datetime) -> Sequence[ActiveEntry]:
        """Entries in force at ``instant`` (aware datetime), lowest priority first."""
        ...

    def next_change(self, after: datetime) -> datetime | None:
        """The next instant after ``after`` at which ``active()`` changes, or None."""
        ...


@dataclass(frozen=True, slots=True)
class Layer:
    """One contribution above the schedule: a show cue, an override or a curtailment.

    A layer either applies a ``scene`` to its target, or (curtailment) caps the level of the
    channels it targets at ``cap`` percent, 0 meaning off: what was dark stays dark."""

    source: str  # "show", "override", "curtail"
    scene: str | None
    target: str
    reason: str
    cap: float | None = None
    states: Mapping[ChannelKey, ChannelState] | None = None
    """Precompiled states (a show's cues so far), used instead of ``scene`` when given."""


DesiredState = dict[ChannelKey, Desired]


def resolve(
    instant: datetime,
    inventory: Inventory,
    scenes: SceneBook,
    schedule: ScheduleSource | None,
    layers: Sequence[Layer] = (),
    default_scene: str | None = None,
) -> tuple[DesiredState, dict[ChannelKey, str]]:
    """Desired state of every channel at ``instant`` and, per channel, why (for the operator)."""
    state: DesiredState = dict.fromkeys(inventory.all_keys, OFF)
    why: dict[ChannelKey, str] = dict.fromkeys(inventory.all_keys, "default: off")
    entries: list[Layer] = []
    if default_scene is not None:
        entries.append(Layer("default", default_scene, "*", "outside the schedule's entries"))
    if schedule is not None:
        entries += [Layer("schedule", e.scene, e.target, e.reason) for e in schedule.active(instant)]
    entries += layers
    for layer in entries:
        selected = inventory.select(layer.target)
        if layer.cap is not None:
            for key in selected:
                current = state[key]
                if isinstance(current, Released) and layer.cap > 0:
                    why[key] += f"; {layer.source} {layer.reason} does not dim what its owner runs"
                    continue
                state[key] = OFF if isinstance(current, Released) else capped(current, layer.cap)
                why[key] = f"{layer.source} {layer.reason} (at most {layer.cap:g}%)"
            continue
        if layer.states is not None:
            state.update(layer.states)
            for key in layer.states:
                why[key] = f"{layer.source} {layer.reason}"
            continue
        assert layer.scene is not None
        applied = scenes.compile(layer.scene, selected)
        state.update(applied)
        for key in applied:
            why[key] = f"{layer.source} {layer.reason} ({layer.scene})"
    return state, why


def capped(state: ChannelState, cap: float) -> ChannelState:
    """A state with its level capped; a cap of 0 switches the channel off."""
    if not state.on or state.level <= cap:
        return state
    if cap <= 0:
        return OFF
    return ChannelState(True, cap, state.colour, state.fade_s)

