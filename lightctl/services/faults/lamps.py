"""Burning hours per channel, from the on-time the controllers report, and the channels whose
lamps near their rated life (so that crews plan replacements instead of waiting for failures).

Between two readings of a controller a channel burnt if the earlier reading showed it lit; a gap
longer than ``MAX_GAP_POLLS`` polls (the controller unreachable, the daemon stopped) is not
counted, since nobody saw what the lamps did then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lightctl.model.faults import Maintenance
from lightctl.model.values import ControllerReading
from lightctl.services.faults.spec import ControllerSpec
from lightctl.store.faults import ChannelHours

MAX_GAP_POLLS = 3.0


@dataclass(slots=True)
class _Channel:
    burning_s: float
    since: int
    lit: bool = False


@dataclass(frozen=True, slots=True)
class LampAge:
    controller_id: str
    channel_id: str
    hours: float
    rated_hours: float | None
    since: int

    @property
    def life_used(self) -> float | None:
        return None if not self.rated_hours else self.hours / self.rated_hours


class BurningHours:
    def __init__(self, specs: Mapping[str, ControllerSpec]) -> None:
        self.specs = specs
        self.channels: dict[tuple[str, str], _Channel] = {}
        self.last_at: dict[str, float] = {}
        self.dirty: set[tuple[str, str]] = set()

    def load(self, rows: list[ChannelHours]) -> None:
        for row in rows:
            self.channels[(row.controller_id, row.channel_id)] = _Channel(row.burning_s, row.since)

    def observe(self, cid: str, reading: ControllerReading, now_ms: int) -> None:
        at = reading.at
        last = self.last_at.get(cid)
        self.last_at[cid] = at
        spec = self.specs.get(cid)
        if spec is None:
            return
        gap = at - last if last is not None else 0.0
        counted = 0.0 < gap <= spec.poll_s * MAX_GAP_POLLS
        channels = self.channels
        for channel_id, got in reading.channels.items():
            key = (cid, channel_id)
            state = channels.get(key)
            if state is None:
                if channel_id not in spec.channels:
                    continue
                state = channels[key] = _Channel(0.0, now_ms)
            if counted and state.lit:
                state.burning_s += gap
                self.dirty.add(key)
            if got.on is not None:
                state.lit = got.on and (got.level is None or got.level > 0)

    def take_dirty(self) -> list[ChannelHours]:
        rows = [ChannelHours(cid, ch, self.channels[(cid, ch)].burning_s, self.channels[(cid, ch)].since) for cid, ch in self.dirty]
        self.dirty.clear()
        return rows

    def relamp(self, cid: str, channel_id: str, now_ms: int) -> float:
        """Lamps replaced: counting starts again; returns the hours they had burnt."""
        state = self.channels.setdefault((cid, channel_id), _Channel(0.0, now_ms))
        before = state.burning_s / 3600
        state.burning_s, state.since = 0.0, now_ms
        self.dirty.add((cid, channel_id))
        return before

    def ages(self, maintenance: Maintenance) -> list[LampAge]:
        """Every channel's burning hours and its lamps' rated life, most worn first."""
        out = []
        for cid, spec in self.specs.items():
            for channel_id, ch in spec.channels.items():
                state = self.channels.get((cid, channel_id))
                hours = state.burning_s / 3600 if state is not None else 0.0
                rated = maintenance.life_of(ch.lighting, ch.led)
                out.append(LampAge(cid, channel_id, hours, rated, state.since if state is not None else 0))
        out.sort(key=lambda a: -(a.life_used or 0.0))
        return out

    def due(self, maintenance: Maintenance) -> list[LampAge]:
        """Channels whose lamps have burnt ``replacement_due_ratio`` of their rated life."""
        return [a for a in self.ages(maintenance) if a.life_used is not None and a.life_used >= maintenance.replacement_due_ratio]
