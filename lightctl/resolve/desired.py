"""Desired state: a pure function of time and a few inputs (ARCHITECTURE.md section 3).

Layers, lowest first; a higher layer's rules win on the channels they select:
  default (off, or the schedule's ``default_scene``)  <  scheduled scene entries (schedules/)
  <  light show cue  <  operator override  <  emergency curtailment.
A scene may hand channels back to their owner (lightctl.model.desired.RELEASED) in any layer; a higher
layer's scene takes them back. A curtailment to off takes them back too and switches them off; a
curtailment that only dims leaves them to their owner (their level is not the centre's to know,
and a cap must never light what the owner keeps dark).
``resolve()`` does no I/O, so the daemon, the schedule preview and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lightctl.inventory.index import Inventory
from lightctl.model.desired import ChannelKey, DesiredState, Layer, Released, ScheduleSource
from lightctl.model.values import OFF, ChannelState
from scenes.model import SceneBook


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

