"""The ``reports:`` section of config.yaml: targets, energy (dimming curve, tariff, meters), the
nightly lighting-on inspections and how long roll-ups are kept.

Every default is DOMAIN.md's ("Targets", "Metrics and how they are computed") or says where it
comes from; the operator may change each one.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lightctl.model.installation import Frozen
from lightctl.model.schedule import parse_clock

QUARTER_MIN = 15
"""Energy is rolled up per quarter hour: tariff periods begin and end on quarter hours."""


class RegionTargets(Frozen):
    """The action plan's targets for one region, as shares (0.95 = 95%); None: no target."""

    street_intelligent_control: float | None = Field(default=0.95, ge=0, le=1)
    landscape_intelligent_control: float | None = Field(default=None, ge=0, le=1)
    street_led_share: float | None = Field(default=0.65, ge=0, le=1)
    landscape_led_share: float | None = Field(default=0.90, ge=0, le=1)
    road_facility_condition: float | None = Field(default=0.95, ge=0, le=1)
    landscape_facility_condition: float | None = Field(default=0.90, ge=0, le=1)
    controllers_online: float | None = Field(default=None, ge=0, le=1)
    case_handling_on_time: float | None = Field(default=0.85, ge=0, le=1)
    case_closure_on_time: float | None = Field(default=0.90, ge=0, le=1)
    lighting_on_arterial: float | None = Field(default=0.98, ge=0, le=1)
    lighting_on_other_roads: float | None = Field(default=0.96, ge=0, le=1)
    lighting_on_landscape: float | None = Field(
        default=None, ge=0, le=1, description="DOMAIN.md gives none for landscape lighting"
    )


WESTERN_DEFAULTS = {
    "street_intelligent_control": 0.80,
    "street_led_share": 0.50,
    "case_handling_on_time": 0.80,
    "case_closure_on_time": 0.85,
}


class Targets(Frozen):
    main_city: RegionTargets = RegionTargets()
    western: RegionTargets = RegionTargets(**WESTERN_DEFAULTS)

    def of(self, region: str) -> RegionTargets:
        return self.western if region == "western" else self.main_city


Period = Literal["peak", "flat", "valley"]
PERIODS: tuple[Period, ...] = ("peak", "flat", "valley")


class TariffPeriod(Frozen):
    """A span of local time in one tariff period; ``to`` before ``from`` crosses midnight."""

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    period: Period

    @field_validator("start", "end")
    @classmethod
    def _quarter_hours(cls, value: str) -> str:
        clock = parse_clock(value)
        if clock.second or clock.minute % QUARTER_MIN:
            raise ValueError(f"{value!r}: tariff periods begin and end on quarter hours (energy is rolled up per 15 minutes)")
        return value

    def quarters(self) -> list[int]:
        """The quarter hours of the day (0 = 00:00-00:15) this span covers."""
        first, last = _quarter_of(self.start), _quarter_of(self.end)
        if last <= first:
            last += 96
        return [q % 96 for q in range(first, last)]


def _quarter_of(text: str) -> int:
    clock = parse_clock(text)
    return (clock.hour * 60 + clock.minute) // QUARTER_MIN


class Tariff(Frozen):
    """Time-of-use prices per kWh. Time no period names is ``flat``."""

    currency: str = "CNY"
    peak: float = Field(default=1.0, ge=0)
    flat: float = Field(default=0.65, ge=0)
    valley: float = Field(default=0.32, ge=0)
    periods: list[TariffPeriod] = []

    @model_validator(mode="after")
    def _no_overlap(self) -> Tariff:
        seen: dict[int, int] = {}
        for index, span in enumerate(self.periods):
            for quarter in span.quarters():
                if quarter in seen:
                    raise ValueError(
                        f"periods[{index}] ({span.start}-{span.end}) overlaps periods[{seen[quarter]}] at "
                        f"{quarter // 4:02d}:{quarter % 4 * 15:02d}"
                    )
                seen[quarter] = index
        return self

    def rate(self, period: str) -> float:
        return {"peak": self.peak, "flat": self.flat, "valley": self.valley}[period]

    def quarter_periods(self) -> tuple[Period, ...]:
        """The period of each of the day's 96 quarter hours."""
        table: list[Period] = ["flat"] * 96
        for span in self.periods:
            for quarter in span.quarters():
                table[quarter] = span.period
        return tuple(table)


CurvePoint = tuple[float, float]


class EnergySettings(Frozen):
    """How energy is metered, estimated and priced."""

    dimming_curve: list[CurvePoint] = Field(
        default=[(0.0, 0.0), (100.0, 1.0)],
        description="(level %, share of rated power) points, interpolated; linear unless the drivers' curve is known",
    )
    tariff: Tariff = Tariff()
    hold_s: float = Field(
        default=900.0, gt=0, le=86_400,
        description="a channel's last observed state is taken to hold this long (at least two polls) when nothing new is seen",
    )
    meter_margin: float = Field(
        default=1.5, ge=1.0, description="a meter step above rated power x time x this is a counter fault, not energy"
    )
    meter_slack_kwh: float = Field(default=0.5, ge=0, description="counter resolution allowed on top of the margin")
    lamp_fault_below: float = Field(
        default=0.8, gt=0, le=1, description="a lit channel drawing less than this share of its expected power has failed lamps"
    )

    @field_validator("dimming_curve")
    @classmethod
    def _curve(cls, points: list[CurvePoint]) -> list[CurvePoint]:
        if len(points) < 2:
            raise ValueError("a dimming curve needs at least two (level, share) points")
        levels = [level for level, _ in points]
        if levels != sorted(levels) or len(set(levels)) != len(levels):
            raise ValueError("the dimming curve's levels must increase")
        if levels[0] > 0 or levels[-1] < 100:
            raise ValueError("the dimming curve must cover levels 0 to 100")
        if any(not 0 <= share <= 1.5 for _, share in points):
            raise ValueError("a dimming curve's share of rated power is 0 to 1.5")
        return points


_INSTANT = re.compile(r"^switch-on\s*(?:([+-])\s*(\d+)\s*(m|min|h))?$")


class InspectionInstant(Frozen):
    """When a lighting-on inspection is taken in each night: ``"22:00"`` (skipped when the
    schedule lights nothing then), or ``"switch-on + 30m"``: that long after the night's first
    switch-on."""

    at: str

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: object) -> object:
        return {"at": data} if isinstance(data, str) else data

    @field_validator("at")
    @classmethod
    def _parses(cls, value: str) -> str:
        cls.parse(value)
        return value

    @staticmethod
    def parse(text: str) -> tuple[Literal["clock", "switch-on"], int]:
        """("clock", seconds after midnight) or ("switch-on", offset seconds)."""
        raw = text.strip()
        match = _INSTANT.match(raw)
        if match is not None:
            sign, amount, unit = match[1], match[2], match[3]
            seconds = 0 if amount is None else int(amount) * (3600 if unit == "h" else 60)
            if seconds > 6 * 3600:
                raise ValueError(f"{raw!r}: at most 6 h from switch-on")
            return "switch-on", -seconds if sign == "-" else seconds
        try:
            clock = parse_clock(raw)
        except ValueError:
            raise ValueError(f"bad inspection instant {raw!r}: expected HH:MM or 'switch-on + 30m'") from None
        return "clock", clock.hour * 3600 + clock.minute * 60 + clock.second


class InspectionSettings(Frozen):
    """The nightly lighting-on inspections the daemon takes by itself."""

    enabled: bool = True
    instants: list[InspectionInstant] = [InspectionInstant(at="switch-on + 30m"), InspectionInstant(at="22:00")]
    stale_s: float = Field(
        default=300.0, gt=0, description="a reading older than this (or than two polls) is not a report of the state now"
    )


class Retention(Frozen):
    """How long roll-ups are kept (raw readings: ``daemon.reading_retention_days``)."""

    hour_days: int | None = Field(default=1830, ge=1, description="hour rows (with their quarter hours); None: for ever")
    day_days: int | None = Field(default=None, ge=1, description="day rows; None: for ever")
    month_days: int | None = Field(default=None, ge=1, description="month rows; None: for ever")
    inspection_days: int | None = Field(default=None, ge=1, description="lighting-on inspections; None: for ever")


class ReportsConfig(Frozen):
    targets: Targets = Targets()
    energy: EnergySettings = EnergySettings()
    inspections: InspectionSettings = InspectionSettings()
    retention: Retention = Retention()
