"""What a light show can reach before it starts, and what holds the rest of it.

Operator overrides (hand-backs among them) and curtailments rank above a show's cues: a show that
starts under them changes nothing on the channels they hold. Starting one must say so, naming each
hold with its id, its owner and its expiry, and a show that would reach nothing is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from lightctl.inventory.index import Inventory
from lightctl.model.desired import ChannelKey
from lightctl.model.times import iso_local
from lightctl.runtime.commands import Override

SHOWN_CONTROLLERS = 6
"""Controllers named in a hold's description before "and N more"."""


@dataclass(frozen=True, slots=True)
class Hold:
    """An override or curtailment in force on some of a show's channels."""

    override: Override
    channels: frozenset[ChannelKey]
    blocks: bool
    """True when the show cannot change these channels at all (an override, a curtailment to off);
    False for a curtailment that only caps their level."""

    @property
    def controllers(self) -> list[str]:
        return sorted({key[0] for key in self.channels})

    def describe(self, zone: tzinfo) -> str:
        o = self.override
        if o.kind == "curtail":
            what = f"curtailment #{o.id} on {o.target!r} (at most {o.cap:g}%)" if o.cap else f"curtailment #{o.id} on {o.target!r} (off)"
        else:
            what = f"override #{o.id} ({o.scene}) on {o.target!r}"
        until = f"until {iso_local(o.until, zone, 'minutes')}" if o.until else "until cleared"
        names = self.controllers
        shown = ", ".join(names[:SHOWN_CONTROLLERS]) + (f" and {len(names) - SHOWN_CONTROLLERS} more" if len(names) > SHOWN_CONTROLLERS else "")
        effect = "holds" if self.blocks else "caps"
        return f"{what} by {o.user}, {until}, {effect} {len(self.channels)} channel(s) on {len(names)} controller(s): {shown}"

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        o = self.override
        return {
            "kind": o.kind,
            "id": o.id,
            "scene": o.scene if o.kind == "override" else None,
            "target": o.target,
            "user": o.user,
            "until": iso_local(o.until, zone),
            "cap": o.cap,
            "blocks": self.blocks,
            "channels": len(self.channels),
            "controllers": self.controllers,
            "description": self.describe(zone),
        }


def show_holds(channels: frozenset[ChannelKey], overrides: Iterable[Override], inventory: Inventory) -> list[Hold]:
    """Every override and curtailment in force on some of ``channels``, as the show would meet
    them. A later override does not hide an earlier one: each is named for what it covers."""
    holds = []
    for override in overrides:
        covered = inventory.select(override.target) & channels
        if covered:
            blocks = override.kind == "override" or not override.cap
            holds.append(Hold(override, frozenset(covered), blocks))
    return holds


def reachable(channels: frozenset[ChannelKey], holds: Iterable[Hold]) -> frozenset[ChannelKey]:
    """The channels a show changes, its holds considered (capped ones still count)."""
    blocked: set[ChannelKey] = set()
    for hold in holds:
        if hold.blocks:
            blocked |= hold.channels
    return channels - blocked
