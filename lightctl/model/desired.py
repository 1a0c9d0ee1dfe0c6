"""Desired state as data: what the centre wants of each channel, and the layers that decide it.

A channel's desired state is a :class:`~lightctl.model.values.ChannelState` the centre commands,
or :data:`RELEASED`: handed back to its owner's own control (BACnet buildings). Layers, lowest
first: the schedule's default scene, its entries, a running show's cue, operator overrides and
hand-backs, curtailment above all (the resolver is ``lightctl.resolve.desired.resolve``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from lightctl.model.values import ChannelId, ChannelState

ChannelKey = tuple[str, ChannelId]
"""(controller id, channel id): a channel's identity across the installation."""


@dataclass(frozen=True, slots=True)
class Released:
    """The channel is its owner's: the centre holds no command on it."""

    def __repr__(self) -> str:
        return "RELEASED"


RELEASED = Released()

Desired = ChannelState | Released
"""What the centre wants of a channel: a state it commands, or to leave it to its owner."""

DesiredState = dict[ChannelKey, Desired]


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

    def calendar_warnings(self, first: date, last: date) -> list[str]:
        """Why some nights in [first, last] may be wrong (a year whose holidays are estimated)."""
        ...


@dataclass(frozen=True, slots=True)
class Layer:
    """One contribution above the schedule: a show cue, an override or a curtailment.

    A layer either applies a ``scene`` to its target, or (curtailment) caps the level of the
    channels it targets at ``cap`` percent, 0 meaning off: what was dark stays dark."""

    source: str  # "default", "schedule", "show", "override", "curtail"
    scene: str | None
    target: str
    reason: str
    cap: float | None = None
    states: Mapping[ChannelKey, ChannelState] | None = None
    """Precompiled states (a show's cues so far), used instead of ``scene`` when given."""


def released_keys(states: Mapping[ChannelKey, Desired]) -> set[ChannelKey]:
    return {key for key, state in states.items() if isinstance(state, Released)}
