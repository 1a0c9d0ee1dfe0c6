"""Energy: kWh per channel, controller, site, district, region or the whole area, or per 15 minutes,
hour, day or month, read from the roll-ups only (:mod:`lightctl.store.energy`), each figure saying
how much of it was metered and how much estimated.

* **Savings** against the baseline of every lamp of the channels in scope at full power from
  sunset to sunrise (at the installation's location) over the same days, counted over the
  channel-time that was observed (``coverage``: a week the daemon was down is no week of savings);
  the savings rate is saved ÷ baseline; standard coal and CO2 of the savings and the CO2 of the consumption at the
  installation's factors (``installation.energy``).
* **Cost** at the time-of-use tariff (``reports.energy.tariff``): each kWh priced at its quarter
  hour's period, as rolled up.
* **Coverage**: the share of channel-time whose state was known. Energy is never made up for what
  was not observed; a low coverage says the figure is short (metered energy across a gap still
  counts, as the controller's unattributed energy).
* **Windows**: ``window`` (a day set, e.g. ``set:spring-decorations`` or
  ``holiday:spring_festival``) keeps only the period's days in it: a festival's energy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from lightctl.inventory.index import Inventory
from lightctl.model.energy import HOUR_MS, QUARTER_MS, LocalCalendar, month_after
from lightctl.model.installation import EnergyFactors
from lightctl.model.reports import Tariff
from lightctl.model.times import iso_local
from lightctl.services.reports.groups import AREA, Place, Places
from lightctl.services.reports.period import Period
from lightctl.services.reports.table import Column, Kind, Table, share
from lightctl.store.energy import EnergyRecords, EnergySums, Grain
from schedules.events import EventError, sun_times

PLACE_BY = ("site", "district", "region", "area", "controller", "channel")
TIME_BY = ("15min", "hour", "day", "month")
ENERGY_BY = PLACE_BY + TIME_BY
UNATTRIBUTED_LABEL = "metered, no channel's state observed"
MAX_HOUR_DAYS = 62
"""``--by hour`` and ``--by 15min`` take at most two months (744 / 2,976 rows)."""


class EnergyReportError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EnergyContext:
    inventory: Inventory
    places: Places
    calendar: LocalCalendar
    tariff: Tariff
    factors: EnergyFactors
    lat: float
    lon: float
    nights: dict[date, tuple[int, int] | None] = field(default_factory=dict)
    """Each day's night, as it is asked for."""


def night_of(ctx: EnergyContext, day: date) -> tuple[int, int] | None:
    """The night that begins at ``day``'s sunset: (sunset, next sunrise) in UTC ms; None where the
    sun does not set (polar latitudes)."""
    try:
        today = sun_times(ctx.lat, ctx.lon, day, ctx.calendar.zone)  # type: ignore[arg-type]
        tomorrow = sun_times(ctx.lat, ctx.lon, day + timedelta(days=1), ctx.calendar.zone)  # type: ignore[arg-type]
    except EventError:
        return None
    return round(today["sunset"].timestamp() * 1000), round(tomorrow["sunrise"].timestamp() * 1000)


def dark_ms(ctx: EnergyContext, start: int, end: int) -> int:
    """Milliseconds of [start, end) between sunset and sunrise at the installation."""
    total = 0
    day = ctx.calendar.date_of(start) - timedelta(days=1)
    last = ctx.calendar.date_of(end)
    while day <= last:
        night = ctx.nights.get(day)
        if night is None and day not in ctx.nights:
            night = ctx.nights[day] = night_of(ctx, day)
        if night is not None:
            total += max(0, min(end, night[1]) - max(start, night[0]))
        day += timedelta(days=1)
    return total


def runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs."""
    out: list[tuple[date, date]] = []
    for day in sorted(days):
        if out and out[-1][1] + timedelta(days=1) == day:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


@dataclass(frozen=True, slots=True)
class Scope:
    """The channels a report covers (a district's, or all) and its days."""

    period: Period
    days: list[date]
    windowed: bool
    controllers: frozenset[str] | None
    channels: list[tuple[str, str]]


def scope(ctx: EnergyContext, period: Period, window: Callable[[date], bool] | None) -> Scope:
    days = [d for d in period.dates() if window is None or window(d)]
    only = ctx.places.only
    if only is None:
        controllers = None
        channels = list(ctx.inventory.channels)
    else:
        district = ctx.inventory.districts[only]
        controllers = frozenset(c.id for s in district.sites for c in s.controllers)
        channels = [key for key in ctx.inventory.channels if key[0] in controllers]
    return Scope(period, days, window is not None, controllers, channels)


async def channel_sums(records: EnergyRecords, ctx: EnergyContext, where: Scope) -> dict[tuple[str, str], EnergySums]:
    """Per channel over the scope's days: whole months from the month roll-ups, the rest from days."""
    totals: dict[tuple[str, str], EnergySums] = defaultdict(EnergySums)
    day_runs: list[tuple[date, date]]
    if where.windowed:
        day_runs = runs(where.days)
    else:
        months, days = where.period.split()
        if months:
            start, end = ctx.calendar.day_start(months[0]), ctx.calendar.day_start(month_after(months[-1]))
            for key, sums in (await records.by_channel(Grain.MONTH, start, end, where.controllers)).items():
                totals[key] += sums
        day_runs = runs(days)
    for first, last in day_runs:
        start, end = ctx.calendar.day_start(first), ctx.calendar.day_start(last + timedelta(days=1))
        for key, sums in (await records.by_channel(Grain.DAY, start, end, where.controllers)).items():
            totals[key] += sums
    return dict(totals)


def _figures(ctx: EnergyContext, sums: EnergySums, baseline_w: float, span_ms: int, dark: int, channels: int) -> dict[str, Any]:
    """A row's figures. The baseline counts the channel-time observed only (``coverage``), so
    that a week the daemon was down is not counted as a week of savings."""
    tariff, factors = ctx.tariff, ctx.factors
    coverage = min(1.0, sums.covered_s * 1000 / (channels * span_ms)) if channels and span_ms else 0.0
    baseline = baseline_w * dark / 3.6e9 * coverage
    saved = baseline - sums.kwh
    metered, estimated = sums.metered_kwh, sums.estimated_kwh
    if sums.kwh <= 0:
        basis = "none"
    elif estimated <= sums.kwh * 1e-6:
        basis = "metered"
    elif metered <= sums.kwh * 1e-6:
        basis = "estimated"
    else:
        basis = "mixed"
    return {
        "channels": channels,
        "kwh": round(sums.kwh, 3),
        "metered_kwh": round(metered, 3),
        "estimated_kwh": round(estimated, 3),
        "basis": basis,
        "peak_kwh": round(sums.peak_kwh, 3),
        "flat_kwh": round(sums.flat_kwh, 3),
        "valley_kwh": round(sums.valley_kwh, 3),
        "cost": round(sums.peak_kwh * tariff.peak + sums.flat_kwh * tariff.flat + sums.valley_kwh * tariff.valley, 2),
        "baseline_kwh": round(baseline, 3),
        "saved_kwh": round(saved, 3),
        "saving_rate": share(saved, baseline),
        "saved_coal_kg": round(saved * factors.coal_kgce_per_kwh, 3),
        "saved_co2_kg": round(saved * factors.co2_kg_per_kwh, 3),
        "co2_kg": round(sums.kwh * factors.co2_kg_per_kwh, 3),
        "coverage": round(coverage, 4) if channels and span_ms else None,
    }


def columns(first: Column) -> list[Column]:
    return [
        first,
        Column("channels", "channels", "int"),
        Column("kwh", "kWh", "kwh"),
        Column("metered_kwh", "metered kWh", "kwh"),
        Column("estimated_kwh", "estimated kWh", "kwh"),
        Column("basis", "basis"),
        Column("peak_kwh", "peak kWh", "kwh"),
        Column("flat_kwh", "flat kWh", "kwh"),
        Column("valley_kwh", "valley kWh", "kwh"),
        Column("cost", "cost", "money"),
        Column("baseline_kwh", "baseline kWh", "kwh"),
        Column("saved_kwh", "saved kWh", "kwh"),
        Column("saving_rate", "saving rate", "share"),
        Column("saved_coal_kg", "standard coal saved kgce", "kg"),
        Column("saved_co2_kg", "CO2 saved kg", "kg"),
        Column("co2_kg", "CO2 emitted kg", "kg"),
        Column("coverage", "channel-time observed", "share"),
    ]


def _group_of(ctx: EnergyContext, by: str, key: tuple[str, str]) -> tuple[str, str]:
    """(group key, label) of a channel's energy for a place grouping."""
    inventory, places = ctx.inventory, ctx.places
    controller_id, channel_id = key
    info = inventory.controllers.get(controller_id)
    if info is None:
        return "?", "(controllers no longer in the inventory)"
    if by == "channel":
        if channel_id == "":
            return f"{controller_id}/", f"{controller_id} ({UNATTRIBUTED_LABEL})"
        channel = next((c for c in info.controller.channels if c.id == channel_id), None)
        name = f" {channel.name}" if channel is not None and channel.name else ""
        return f"{controller_id}/{channel_id}", f"{controller_id}/{channel_id}{name}"
    if by == "controller":
        return controller_id, f"{controller_id} {info.controller.name or ''}".strip()
    place = Place(info.site.id, info.district.id, info.district.region)
    group = places.key(by, place)
    return group, places.label(by, group)


async def energy_table(records: EnergyRecords, ctx: EnergyContext, period: Period, by: str, window: Callable[[date], bool] | None = None, window_name: str | None = None) -> Table:
    if by not in ENERGY_BY:
        raise EnergyReportError(f"energy cannot be grouped by {by!r}: expected one of {', '.join(ENERGY_BY)}")
    where = scope(ctx, period, window)
    title = f"Energy by {by}, {period.describe()}" + (f", days in {window_name}" if window_name else "")
    if ctx.places.only is not None:
        title += f", {ctx.places.label('district', ctx.places.only)}"
    notes = [
        "kWh = metered + estimated; estimated from each channel's observed level through the dimming curve x rated watts",
        "baseline: every lamp in scope at full power from sunset to sunrise, over the channel-time observed (coverage)",
        f"cost at the tariff: peak {ctx.tariff.peak} / flat {ctx.tariff.flat} / valley {ctx.tariff.valley} {ctx.tariff.currency} per kWh",
        f"standard coal {ctx.factors.coal_kgce_per_kwh} kgce/kWh, CO2 {ctx.factors.co2_kg_per_kwh} kg/kWh",
    ]
    if by in PLACE_BY:
        table = await _by_place(records, ctx, where, by)
    else:
        table = await _by_time(records, ctx, where, by)
    table.title, table.period, table.by, table.notes = title, period.as_json(), by, notes
    if window_name:
        table.notes.append(f"only the {len(where.days)} day(s) of the period in {window_name}")
    if by == "15min":
        table.notes.append("a quarter hour's metered share and coverage are its hour's")
    return table


async def _by_place(records: EnergyRecords, ctx: EnergyContext, where: Scope, by: str) -> Table:
    sums = await channel_sums(records, ctx, where)
    groups: dict[str, list[Any]] = {}
    for key in where.channels:  # every channel in scope has a row, used or not
        group, label = _group_of(ctx, by, key)
        entry = groups.setdefault(group, [label, EnergySums(), 0.0, 0])
        entry[2] += ctx.inventory.channels[key].channel.rated_w
        entry[3] += 1
    for key, value in sums.items():
        group, label = _group_of(ctx, by, key)
        entry = groups.setdefault(group, [label, EnergySums(), 0.0, 0])
        entry[1] += value
    span = sum(ctx.calendar.day_start(d + timedelta(days=1)) - ctx.calendar.day_start(d) for d in where.days)
    dark = sum(dark_ms(ctx, ctx.calendar.day_start(d), ctx.calendar.day_start(d + timedelta(days=1))) for d in where.days)
    rows = []
    total_sums, total_w, total_channels = EnergySums(), 0.0, 0
    for group in sorted(groups, key=lambda g: (g == AREA, g)):
        label, value, rated_w, channels = groups[group]
        rows.append({"group": group, "label": label, **_figures(ctx, value, rated_w, span, dark, channels)})
        total_sums, total_w, total_channels = total_sums + value, total_w + rated_w, total_channels + channels
    total = {"group": "total", "label": "合计 total", **_figures(ctx, total_sums, total_w, span, dark, total_channels)}
    return Table("energy", "", columns(Column("label", by)), rows, total, chart={"category": "label", "values": ["kwh", "baseline_kwh"]})


async def _by_time(records: EnergyRecords, ctx: EnergyContext, where: Scope, by: str) -> Table:
    calendar = ctx.calendar
    rated_w = sum(ctx.inventory.channels[key].channel.rated_w for key in where.channels)
    channels = len(where.channels)
    buckets: dict[int, EnergySums] = defaultdict(EnergySums)
    spans: dict[int, int] = defaultdict(int)
    darks: dict[int, int] = defaultdict(int)
    day_runs = runs(where.days)
    if by in ("hour", "15min"):
        if len(where.days) > MAX_HOUR_DAYS:
            raise EnergyReportError(f"--by {by} covers at most {MAX_HOUR_DAYS} days; this period has {len(where.days)}")
        step = HOUR_MS if by == "hour" else QUARTER_MS
        for first, last in day_runs:
            start, end = calendar.day_start(first), calendar.day_start(last + timedelta(days=1))
            hours = await records.by_bucket(Grain.HOUR, start, end, where.controllers)
            if by == "hour":
                for hour, sums in hours.items():
                    buckets[hour] += sums
            else:
                periods = ctx.tariff.quarter_periods()
                for hour, quarters in (await records.quarters(start, end, where.controllers)).items():
                    whole = hours.get(hour, EnergySums())
                    metered_share = whole.metered_kwh / whole.kwh if whole.kwh > 0 else 0.0
                    for index, kwh in enumerate(quarters):
                        quarter = hour + index * QUARTER_MS
                        period = periods[calendar.place(quarter // QUARTER_MS).of_day]
                        buckets[quarter] += EnergySums(
                            kwh, kwh * metered_share, kwh if period == "peak" else 0.0, kwh if period == "valley" else 0.0,
                            whole.covered_s / 4,
                        )
            for bucket in range(start, end, step):
                spans[bucket] = step
                darks[bucket] = dark_ms(ctx, bucket, bucket + step)
    else:
        if by == "month" and not where.windowed:  # whole months from their own rows, the rest from days
            months, days = where.period.split()
            if months:
                start, end = calendar.day_start(months[0]), calendar.day_start(month_after(months[-1]))
                for month_key, sums in (await records.by_bucket(Grain.MONTH, start, end, where.controllers)).items():
                    buckets[month_key] += sums
            fetch = runs(days)
        else:
            fetch = day_runs
        for first, last in fetch:
            start, end = calendar.day_start(first), calendar.day_start(last + timedelta(days=1))
            for day_key, sums in (await records.by_bucket(Grain.DAY, start, end, where.controllers)).items():
                buckets[_fold(calendar, day_key, by)] += sums
        for first, last in day_runs:
            day = first
            while day <= last:
                day_start, day_end = calendar.day_start(day), calendar.day_start(day + timedelta(days=1))
                key = _fold(calendar, day_start, by)
                spans[key] += day_end - day_start
                darks[key] += dark_ms(ctx, day_start, day_end)
                day += timedelta(days=1)
    rows = []
    total, span_total, dark_total = EnergySums(), 0, 0
    for bucket in sorted(spans):
        value = buckets.get(bucket, EnergySums())
        rows.append({"bucket": _label(calendar, bucket, by), **_figures(ctx, value, rated_w, spans[bucket], darks[bucket], channels)})
        total, span_total, dark_total = total + value, span_total + spans[bucket], dark_total + darks[bucket]
    kind: Kind = "date" if by == "day" else "text"
    total_row = {"bucket": "合计 total", **_figures(ctx, total, rated_w, span_total, dark_total, channels)}
    return Table("energy", "", columns(Column("bucket", by, kind)), rows, total_row, chart={"category": "bucket", "values": ["kwh", "baseline_kwh"]})


def _fold(calendar: LocalCalendar, day_start: int, by: str) -> int:
    if by == "month":
        return calendar.day_start(calendar.date_of(day_start).replace(day=1))
    return day_start


def _label(calendar: LocalCalendar, bucket: int, by: str) -> str:
    if by == "month":
        return calendar.date_of(bucket).strftime("%Y-%m")
    if by == "day":
        return calendar.date_of(bucket).isoformat()
    return iso_local(bucket, calendar.zone, "minutes") or ""
