"""What the schedule will use: energy and cost over the coming nights per group, and what a
curtailment would shed now.

**Forecast.** Each operating day (noon to noon) is cut at the schedule's transitions
(:meth:`schedules.engine.Schedule.transitions`: entries starting and ending, at their sun times
for that night); between two cuts the desired state is constant, so it is resolved once
(:func:`lightctl.resolve.desired.resolve`, as the daemon does, without operator layers) and every
channel's power taken from its scene's level through the dimming curve
(:func:`lightctl.model.energy.watts_at`). Energy is split at quarter hours for the tariff. Light
shows' cues are not in it (a show runs over its slot's scene); channels handed back to their
owners draw what their owners decide and are left out.

**What-if curtailment.** The watts a cap on a selector would take off now: each channel's power
at its level before and after (one computation for the daemon's own record of what a
curtailment shed and for the question asked before one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

from lightctl.inventory.index import Inventory
from lightctl.model.desired import ChannelKey, Desired, DesiredState
from lightctl.model.energy import QUARTER_MS, DimmingCurve, LocalCalendar, watts_at
from lightctl.model.reports import Tariff
from lightctl.model.values import ChannelState
from lightctl.resolve.desired import resolve
from lightctl.services.reports.groups import AREA, Place, Places
from lightctl.services.reports.table import Column, Table
from scenes.model import SceneBook
from schedules.engine import Schedule
from schedules.events import day_end, day_start

FORECAST_BY = ("night", "site", "district", "region", "area")
MAX_NIGHTS = 400


class ForecastError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ForecastContext:
    inventory: Inventory
    scenes: SceneBook
    schedule: Schedule
    default_scene: str | None
    curve: DimmingCurve
    tariff: Tariff
    calendar: LocalCalendar
    places: Places


def channel_watts_of(inventory: Inventory, key: ChannelKey, state: Desired, curve: DimmingCurve) -> float:
    """What a channel draws in a desired state; 0 for a channel its owner runs."""
    if not isinstance(state, ChannelState):
        return 0.0
    channel = inventory.channels[key].channel
    return watts_at(channel.rated_w, channel.dimmable, state.on, state.level, curve) or 0.0


def _place(inventory: Inventory, key: ChannelKey) -> Place:
    info = inventory.channels[key]
    return Place(info.site.id, info.district.id, info.district.region)


def segment_watts(ctx: ForecastContext, at: datetime, channels: list[ChannelKey], cache: dict[Any, dict[str, float]]) -> dict[str, float]:
    """Watts per group key (``by:key`` for every place grouping) while the entries in force at
    ``at`` hold: resolved once per distinct set of entries (nights repeat them)."""
    active = tuple(ctx.schedule.active(at))
    found = cache.get(active)
    if found is None:
        desired, _why = resolve(at, ctx.inventory, ctx.scenes, ctx.schedule, (), ctx.default_scene)
        watts: dict[str, float] = defaultdict(float)
        for key in channels:
            w = channel_watts_of(ctx.inventory, key, desired[key], ctx.curve)
            if w:
                place = _place(ctx.inventory, key)
                for by in ("site", "district", "region", AREA):
                    watts[f"{by}:{ctx.places.key(by, place)}"] += w
        found = cache[active] = dict(watts)
    return found


def night_energy(ctx: ForecastContext, night: date, cache: dict[Any, dict[str, float]] | None = None) -> dict[str, list[float]]:
    """Per group key of every place grouping: [kWh, peak kWh, valley kWh, highest kW] of one night."""
    zone = ctx.schedule.zone
    start, end = day_start(night, zone), day_end(night, zone)
    cuts = sorted({start, end, *(t.at for t in ctx.schedule.transitions(start, end))})
    periods = ctx.tariff.quarter_periods()
    channels = [k for k in ctx.inventory.channels if ctx.places.wanted(_place(ctx.inventory, k))]
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    cache = {} if cache is None else cache
    for a, b in pairwise(cuts):
        watts = segment_watts(ctx, a, channels, cache)
        if not watts:
            continue
        ms = {"peak": 0, "flat": 0, "valley": 0}
        t0, t1 = round(a.timestamp() * 1000), round(b.timestamp() * 1000)
        t = t0
        while t < t1:
            quarter = t // QUARTER_MS
            upto = min(t1, (quarter + 1) * QUARTER_MS)
            ms[periods[ctx.calendar.place(quarter).of_day]] += upto - t
            t = upto
        for group, w in watts.items():
            row = out[group]
            row[0] += w * (t1 - t0) / 3.6e9
            row[1] += w * ms["peak"] / 3.6e9
            row[2] += w * ms["valley"] / 3.6e9
            row[3] = max(row[3], w / 1000)
    return out


def forecast_table(ctx: ForecastContext, first: date, nights: int, by: str) -> Table:
    if by not in FORECAST_BY:
        raise ForecastError(f"a forecast is grouped by one of {', '.join(FORECAST_BY)}, not {by!r}")
    if not 1 <= nights <= MAX_NIGHTS:
        raise ForecastError(f"--nights must be 1 to {MAX_NIGHTS}")
    tariff = ctx.tariff
    rows: list[dict[str, Any]] = []
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    estimated_nights = []
    area_key = f"area:{AREA}"
    cache: dict[Any, dict[str, float]] = {}
    for n in range(nights):
        night = first + timedelta(days=n)
        if ctx.schedule.official.estimated(night) and ctx.schedule.uses_official_calendar():
            estimated_nights.append(night.isoformat())
        energy = night_energy(ctx, night, cache)
        if by == "night":
            kwh, peak, valley, kw = energy.get(area_key, [0.0, 0.0, 0.0, 0.0])
            rows.append({"bucket": night.isoformat(), **_money(tariff, kwh, peak, valley, kw)})
        for group, values in energy.items():
            tally = totals[group]
            tally[0], tally[1], tally[2] = tally[0] + values[0], tally[1] + values[1], tally[2] + values[2]
            tally[3] = max(tally[3], values[3])
    if by != "night":
        for group, values in sorted(totals.items()):
            kind, _, key = group.partition(":")
            if kind == by:
                rows.append({"bucket": ctx.places.label(by, key), **_money(tariff, *values)})
    total = _money(tariff, *totals.get(area_key, [0.0, 0.0, 0.0, 0.0]))
    notes = [
        "from the schedule's transitions, the night lengths at their sun times and the scenes' levels, "
        "through the dimming curve; light shows' cues and operators' overrides are not in it",
        f"cost at peak {tariff.peak} / flat {tariff.flat} / valley {tariff.valley} {tariff.currency} per kWh",
    ]
    if estimated_nights:
        notes.append(f"holidays estimated (no published arrangement) on: {', '.join(estimated_nights)}")
    last = first + timedelta(days=nights - 1)
    title = f"Forecast by {by}, nights of {first} to {last}"
    if ctx.places.only is not None:
        title += f", {ctx.places.label('district', ctx.places.only)}"
    return Table(
        "forecast",
        title,
        [
            Column("bucket", by, "date" if by == "night" else "text"),
            Column("kwh", "kWh", "kwh"),
            Column("peak_kwh", "peak kWh", "kwh"),
            Column("flat_kwh", "flat kWh", "kwh"),
            Column("valley_kwh", "valley kWh", "kwh"),
            Column("cost", "cost", "money"),
            Column("peak_kw", "highest kW", "kw"),
        ],
        rows,
        {"bucket": "合计 total", **total},
        period={"from": first.isoformat(), "to": last.isoformat(), "timezone": str(ctx.calendar.zone)},
        by=by,
        chart={"category": "bucket", "values": ["kwh"]},
        notes=notes,
    )


def _money(tariff: Tariff, kwh: float, peak: float, valley: float, kw: float) -> dict[str, Any]:
    flat = max(0.0, kwh - peak - valley)
    return {
        "kwh": round(kwh, 3),
        "peak_kwh": round(peak, 3),
        "flat_kwh": round(flat, 3),
        "valley_kwh": round(valley, 3),
        "cost": round(peak * tariff.peak + flat * tariff.flat + valley * tariff.valley, 2),
        "peak_kw": round(kw, 3),
    }


# --------------------------------------------------------------------------- what-if curtailment


@dataclass(frozen=True, slots=True)
class Shed:
    controller_id: str
    channel_id: str
    luminaires: int
    level_before: float
    level_after: float
    shed_w: float


def shed(
    inventory: Inventory,
    keys: Iterable[ChannelKey],
    before: DesiredState,
    after: DesiredState,
    output: Callable[[ChannelKey, Desired], float],
    curve: DimmingCurve,
) -> list[Shed]:
    """Channels whose output a change of desired state lowers, with the watts it takes off;
    ``output`` gives a channel's level in percent (0 when off; for a channel its owner runs, as
    last read)."""
    out = []
    for key in sorted(keys):
        was, now = output(key, before[key]), output(key, after[key])
        if now < was:
            channel = inventory.channels[key].channel
            w_before = watts_at(channel.rated_w, channel.dimmable, was > 0, was, curve) or 0.0
            w_after = watts_at(channel.rated_w, channel.dimmable, now > 0, now, curve) or 0.0
            out.append(Shed(key[0], key[1], channel.luminaire_count, was, now, max(0.0, w_before - w_after)))
    return out
