"""Energy arithmetic every part shares: a channel's power at a level (through the dimming curve),
and where an instant falls in the installation's calendar (quarter hour, hour, day, month, and
the tariff's period). Pure: the store's roll-ups, the reports, the forecast and the curtailment's
what-if all compute a channel's watts here, so that they agree.

Roll-up buckets are quarter hours counted in UTC (``ms // QUARTER_MS``): every time zone in use
is offset from UTC by a multiple of 15 minutes, so a UTC quarter is a local quarter too. Hours,
days and months are the installation's local ones.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo

from lightctl.model.installation import ChannelConfig
from lightctl.model.reports import EnergySettings

QUARTER_MS = 900_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
QUARTERS_PER_DAY = 96


class DimmingCurve:
    """Share of rated power drawn at a level, interpolated between configured points."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        self.levels = [float(level) for level, _ in points]
        self.shares = [float(share) for _, share in points]
        self.linear = list(points) == [(0.0, 0.0), (100.0, 1.0)]

    @classmethod
    def of(cls, settings: EnergySettings) -> DimmingCurve:
        return cls(settings.dimming_curve)

    def share(self, level: float) -> float:
        if self.linear:
            return min(1.0, max(0.0, level / 100.0))
        levels, shares = self.levels, self.shares
        if level <= levels[0]:
            return shares[0]
        if level >= levels[-1]:
            return shares[-1]
        i = bisect_right(levels, level)
        lo, hi = levels[i - 1], levels[i]
        return shares[i - 1] + (shares[i] - shares[i - 1]) * (level - lo) / (hi - lo)


def watts_at(rated_w: float, dimmable: bool, on: bool | None, level: float | None, curve: DimmingCurve) -> float | None:
    """What luminaires of ``rated_w`` draw in a state; None when the state is not known. A channel
    that cannot dim draws full power whenever it is on; a level not reported is taken as full."""
    if on is None:
        return None
    if not on:
        return 0.0
    if level is None or not dimmable:
        return rated_w
    return rated_w * curve.share(level) if level > 0 else 0.0


def channel_watts(channel: ChannelConfig, on: bool | None, level: float | None, curve: DimmingCurve) -> float | None:
    """What a channel's luminaires draw in a state (:func:`watts_at`)."""
    return watts_at(channel.rated_w, channel.dimmable, on, level, curve)


@dataclass(frozen=True, slots=True)
class QuarterPlace:
    """Where a quarter hour falls in the local calendar; times are UTC epoch ms of local starts."""

    hour: int
    index: int
    """The quarter within its hour, 0-3."""
    day: int
    month: int
    of_day: int
    """The quarter within its local day, 0-95 (the tariff's table)."""


class LocalCalendar:
    """The installation's local hours, days and months, for UTC quarter-hour numbers (cached)."""

    CACHE_LIMIT = 8192
    """Quarters kept: recent ones are asked again and again, old ones seldom (and a big cache
    costs every full garbage collection a walk through it)."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._places: dict[int, QuarterPlace] = {}

    def place(self, quarter: int) -> QuarterPlace:
        found = self._places.get(quarter)
        if found is None:
            local = datetime.fromtimestamp(quarter * QUARTER_MS / 1000, self.zone)
            hour = local.replace(minute=0, second=0, microsecond=0)
            found = QuarterPlace(
                hour=_ms(hour),
                index=local.minute // 15,
                day=self.day_start(local.date()),
                month=self.day_start(local.date().replace(day=1)),
                of_day=(local.hour * 60 + local.minute) // 15,
            )
            if len(self._places) >= self.CACHE_LIMIT:
                self._places.clear()
            self._places[quarter] = found
        return found

    def day_start(self, day: date) -> int:
        """UTC ms of local midnight starting ``day``."""
        return _ms(datetime.combine(day, time(), tzinfo=self.zone))

    def date_of(self, ms: int) -> date:
        return datetime.fromtimestamp(ms / 1000, self.zone).date()


def _ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def month_after(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)
