"""The lighting-on rate (亮灯率): luminaires lit ÷ luminaires that should be lit, at an instant when
the schedule has them on (DOMAIN.md), per site and lighting class (arterial road, other road,
landscape), taken by the daemon at set instants of each night and stored, so that a month's rate
is the sum of its inspections.

At an inspection, for each channel the centre commands on (a channel handed back to its owner is
not the centre's to light and counts in neither figure):

* its controller gave no fresh state (offline, or its last reading is older than
  ``reports.inspections.stale_s`` and two polls): its luminaires are *not reported*, and left out
  of the rate (counted apart, so that a dark district cannot pass for a lit one unseen);
* it is reported off, or its circuit tripped: none lit;
* the controller counts failed lamps (DALI: ``<channel>.lamp_failures``): that many dark;
* it reports a lamp fault, or draws less than ``reports.energy.lamp_fault_below`` (80%) of what
  its luminaires should at the level it holds: lit in proportion to its power (none if it
  measures no power);
* otherwise all lit.

The luminaires out of service at that instant (the facility condition rate) come from the
faults' records when connected (:class:`~lightctl.services.reports.sources.FaultSource`), else
from the same reports: those found dark for a lamp fault or a tripped circuit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from lightctl.inventory.index import ChannelInfo, Inventory
from lightctl.model.desired import Desired
from lightctl.model.energy import DimmingCurve, watts_at
from lightctl.model.values import ChannelId, ChannelReading, ChannelState, ControllerReading, FaultKind
from lightctl.services.reports.groups import Figure
from lightctl.store.inspections import ClassRow, Inspection, SiteRow

LightingClass = Literal["arterial", "other", "landscape"]
CLASSES: tuple[LightingClass, ...] = ("arterial", "other", "landscape")
DARK_FAULTS = frozenset({FaultKind.BREAKER_TRIP})
LAMP_FAULTS = frozenset({FaultKind.LAMP_FAILURE, FaultKind.GEAR_FAILURE})

LIGHTING_ON_FIGURES = {
    "arterial": Figure("lighting_on_arterial", "主干道亮灯率 lighting-on, arterial roads", lambda t: t.lighting_on_arterial),
    "other": Figure("lighting_on_other_roads", "次干道及支路亮灯率 lighting-on, other roads", lambda t: t.lighting_on_other_roads),
    "landscape": Figure("lighting_on_landscape", "景观照明亮灯率 lighting-on, landscape lighting", lambda t: t.lighting_on_landscape),
}


@dataclass(frozen=True, slots=True)
class ControllerNow:
    """What the daemon holds of a controller at the inspection."""

    desired: Mapping[ChannelId, Desired]
    reading: ControllerReading | None
    online: bool


@dataclass(frozen=True, slots=True)
class InspectionSettings:
    now: float
    """``time.time()`` of the inspection."""
    stale_s: float
    lamp_fault_below: float
    curve: DimmingCurve


def lit_share(info: ChannelInfo, want: ChannelState, got: ChannelReading, reading: ControllerReading, settings: InspectionSettings) -> tuple[float, bool]:
    """(share of the channel's luminaires lit, whether a fault explains the dark ones)."""
    if not got.on or got.faults & DARK_FAULTS:
        return 0.0, bool(got.faults & DARK_FAULTS)
    count = info.channel.luminaire_count
    failures = reading.measurements.get(f"{info.key[1]}.lamp_failures")
    if failures is not None and count:
        return max(0.0, count - failures) / count, failures > 0
    level = got.level if got.level is not None else want.level
    expected = watts_at(info.channel.rated_w, info.channel.dimmable, True, level, settings.curve) or 0.0
    power = got.power_w
    low = power is not None and expected > 0 and power < settings.lamp_fault_below * expected
    if got.faults & LAMP_FAULTS or low:
        if power is None or expected <= 0:
            return 0.0, True
        return min(1.0, power / expected), True
    return 1.0, False


def inspect(
    inventory: Inventory,
    observed: Mapping[str, ControllerNow],
    settings: InspectionSettings,
    *,
    at_ms: int,
    instant: str,
    source: str,
    faulty: Mapping[tuple[str, str], float] | None = None,
) -> Inspection:
    """The lighting-on inspection now (see the module's docstring)."""
    rows: dict[tuple[str, str, LightingClass], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0.0])
    """(site, district, class) -> [luminaires, should be lit, lit, not reported, out of service]."""
    for key, info in inventory.channels.items():
        now = observed.get(key[0])
        want = now.desired.get(key[1]) if now is not None else None
        reading = now.reading if now is not None else None
        fresh = (
            now is not None
            and now.online
            and reading is not None
            and settings.now - reading.at <= max(settings.stale_s, 2 * info.controller.poll_s + 10)
        )
        got = reading.channels.get(key[1]) if fresh and reading is not None else None
        should = isinstance(want, ChannelState) and want.on and want.level > 0
        share, explained = 1.0, False
        reported = got is not None and got.on is not None
        if should and reported and got is not None and reading is not None and isinstance(want, ChannelState):
            share, explained = lit_share(info, want, got, reading, settings)
        count = info.channel.luminaire_count
        estimated = count * (1 - share) if explained else 0.0
        # the faults' records say what is dark as a whole; a lamp failure's part only the reading can
        out_of_service = max(faulty.get(key, 0.0), estimated) if faulty is not None else estimated
        for batch in info.channel.luminaires:
            row = rows[(info.site.id, info.district.id, batch.lighting_class)]
            weight = batch.count / count if count else 0.0
            row[0] += batch.count
            row[4] += out_of_service * weight
            if should:
                row[1] += batch.count
                if reported:
                    row[2] += batch.count * share
                else:
                    row[3] += batch.count
    classes = [
        ClassRow(site, district, inventory.districts[district].region, lighting_class, int(v[0]), int(v[1]), round(v[2], 3), int(v[3]), round(v[4], 3))
        for (site, district, lighting_class), v in sorted(rows.items())
    ]
    sites = []
    for site_id, site in inventory.sites.items():
        district = next(d for d in inventory.districts.values() if site in d.sites)
        online = sum(1 for c in site.controllers if (n := observed.get(c.id)) is not None and n.online)
        if site.controllers:
            sites.append(SiteRow(site_id, district.id, district.region, len(site.controllers), online))
    return Inspection(at_ms, instant, source, classes, sites)
