"""What the reports need from the faults and work orders (issue 14), as two small protocols, so
that the reports do not depend on how those records are kept.

* :class:`FaultSource`: at an instant, how many of each channel's luminaires are out of service
  because of an active fault (a lamp, a tripped or dead circuit, a cabinet that cannot supply
  them). Asked at every lighting-on inspection; the facility condition rate is summed from the
  inspections. Without one, an inspection counts what the controllers themselves report: the
  luminaires it finds dark for a lamp fault or a tripped circuit on channels that should be lit.
* :class:`CaseSource`: per district (and site, where the case has one) over a span, the cases
  whose deadline fell in it, and of those the deferred ones (out of the denominator, DOMAIN.md),
  those handled on time, closed on time, and closed at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

ChannelKey = tuple[str, str]


class FaultSource(Protocol):
    async def faulty_luminaires(self, at_ms: int) -> Mapping[ChannelKey, float]:
        """Channel (controller id, channel id) -> luminaires out of service at ``at_ms`` (UTC ms);
        channels with none may be left out."""
        ...


@dataclass(frozen=True, slots=True)
class CaseCounts:
    """Work orders of one district (and site, or None) whose deadline fell in a span."""

    district_id: str
    site_id: str | None
    due: int
    deferred: int
    handled_on_time: int
    closed_on_time: int
    closed: int

    def __post_init__(self) -> None:
        counted = self.due - self.deferred
        if self.deferred < 0 or counted < 0 or not 0 <= self.handled_on_time <= counted or not 0 <= self.closed_on_time <= self.closed:
            raise ValueError(f"inconsistent case counts for {self.district_id}/{self.site_id}: {self}")


class CaseSource(Protocol):
    async def case_counts(self, start_ms: int, end_ms: int) -> Sequence[CaseCounts]:
        """Cases due in [start_ms, end_ms) (UTC ms), counted per district and site."""
        ...
