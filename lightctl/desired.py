"""Desired state: a pure function of time and a few inputs (ARCHITECTURE.md section 3).

Layers, lowest first; a higher layer's rules win on the channels they select:
  default off  <  scheduled scene entries (schedules/)  <  light show cue  <  operator override
  <  emergency curtailment.
``resolve()`` does no I/O, so the daemon, the schedule preview and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from drivers.base import OFF, ChannelState
from lightctl.inventory import ChannelKey, Inventory
from scenes.model import SceneBook


@dataclass(frozen=True, slots=True)
class ActiveEntry:
    """A scene in force on a selector, and why (``weekday-night: sunset-10m``)."""

    scene: str
    target: str
    priority: int
    reason: str


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
    """One contribution above the schedule: a show cue, an override or a curtailment."""

    source: str  # "show", "override", "curtail"
    scene: str
    target: str
    reason: str


DesiredState = dict[ChannelKey, ChannelState]


def resolve(
    instant: datetime,
    inventory: Inventory,
    scenes: SceneBook,
    schedule: ScheduleSource | None,
    layers: Sequence[Layer] = (),
) -> tuple[DesiredState, dict[ChannelKey, str]]:
    """Desired state of every channel at ``instant`` and, per channel, why (for the operator)."""
    state: DesiredState = dict.fromkeys(inventory.all_keys, OFF)
    why: dict[ChannelKey, str] = dict.fromkeys(inventory.all_keys, "default: off")
    entries: list[tuple[str, str, str]] = []
    if schedule is not None:
        entries += [(e.scene, e.target, f"schedule {e.reason}") for e in schedule.active(instant)]
    entries += [(layer.scene, layer.target, f"{layer.source} {layer.reason}") for layer in layers]
    for scene_id, target, reason in entries:
        applied = scenes.compile(scene_id, inventory.select(target))
        state.update(applied)
        for key in applied:
            why[key] = f"{reason} ({scene_id})"
    return state, why


def changed(desired: Mapping[ChannelKey, ChannelState], before: Mapping[ChannelKey, ChannelState]) -> set[ChannelKey]:
    return {key for key, value in desired.items() if before.get(key) != value}
