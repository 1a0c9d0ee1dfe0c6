"""The reports as one object: what the API, the monthly workbook and ``lightctl bench report``
ask for. Each figure is computed in one module (``rates``, ``lighting_on``, ``energy``,
``forecast``); this puts together their inputs (the config, the store's roll-ups and inspections,
the schedule, the faults' and work orders' sources) and returns tables
(:mod:`lightctl.services.reports.table`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.model.energy import DimmingCurve, LocalCalendar, month_after
from lightctl.model.schedule import DaySetSpec
from lightctl.services.reports import energy as energy_report
from lightctl.services.reports import forecast, rates
from lightctl.services.reports.groups import AREA, Figure, Place, Places, judge
from lightctl.services.reports.lighting_on import CLASSES, LIGHTING_ON_FIGURES
from lightctl.services.reports.period import Period, PeriodError
from lightctl.services.reports.sources import CaseSource, FaultSource
from lightctl.services.reports.table import Column, Table, met, share
from lightctl.store import Store
from scenes.model import SceneBook
from schedules.engine import Schedule

REPORTS = ("rates", "lighting-on", "energy", "forecast", "workorders")
PLACE_BY = ("site", "district", "region", "area")


class ReportError(ValueError):
    """A request a report cannot answer: the message says why (HTTP 400, CLI exit 2)."""


class Reports:
    def __init__(
        self,
        config: Config,
        inventory: Inventory,
        store: Store,
        scenes: SceneBook,
        schedule: Schedule | None,
        *,
        faults: FaultSource | None = None,
        cases: CaseSource | None = None,
    ) -> None:
        self.config = config
        self.inventory = inventory
        self.store = store
        self.scenes = scenes
        self.schedule = schedule
        self.faults = faults
        self.cases = cases
        self.zone = ZoneInfo(config.installation.timezone)
        self.calendar = LocalCalendar(self.zone)
        self.curve = DimmingCurve.of(config.reports.energy)

    # -- arguments ----------------------------------------------------------------------------

    def today(self) -> date:
        return datetime.now(self.zone).date()

    def period(self, first: str | None, last: str | None) -> Period:
        try:
            return Period.parse(first, last, self.zone, self.today())
        except PeriodError as exc:
            raise ReportError(str(exc)) from None

    def places(self, district: str | None) -> Places:
        try:
            return Places(self.inventory, district)
        except ValueError as exc:
            raise ReportError(str(exc)) from None

    def window(self, text: str | None) -> Callable[[date], bool] | None:
        """A day set (``set:spring-decorations``, ``holiday:spring_festival``, ``sat``) as a test of days."""
        if text is None:
            return None
        if self.schedule is None:
            raise ReportError("--window needs the schedule's calendars, and this installation has no schedule")
        try:
            spec = DaySetSpec.model_validate(text)
            self.schedule.day_sets.check(spec)
        except ValueError as exc:
            raise ReportError(f"--window {text!r}: {exc}") from None
        day_sets = self.schedule.day_sets
        return lambda day: day_sets.contains(spec, day)

    # -- the reports ---------------------------------------------------------------------------

    async def rates(self, period: Period, by: str = "district", district: str | None = None) -> Table:
        if by not in PLACE_BY:
            raise ReportError(f"rates are grouped by one of {', '.join(PLACE_BY)}, not {by!r}")
        places = self.places(district)
        start, end = period.bounds(self.calendar)
        counts = rates.inventory_counts(self.inventory, places)
        counts += rates.inspection_counts(await self.store.inspections.class_sums(start, end), await self.store.inspections.site_sums(start, end))
        notes = [
            "intelligent-control and LED shares: the inventory as configured now, legacy time-clock circuits included; "
            "landscape lighting is kinds landscape and decoration",
            "in service and controllers online: summed over the period's lighting-on inspections",
        ]
        figures: list[Figure] = [*rates.INVENTORY_FIGURES, *rates.INSPECTION_FIGURES]
        if self.cases is not None:
            counts += rates.case_counts(await self.cases.case_counts(start, end), places)
            figures += rates.CASE_FIGURES
            notes.append("cases on time: handled (closed) on time ÷ (due − deferred), DOMAIN.md")
        else:
            notes.append("work orders are not connected to the reports: no case figures")
        if self.faults is None:
            notes.append("luminaires out of service: as the controllers report them at each inspection (the faults' records are not connected)")
        rows = _summary_rows(by, counts, figures, places, self.config)
        return Table("rates", f"Rates by {by}, {period.describe()}{_district_note(places)}", rates.RATE_COLUMNS, rows,
                     period=period.as_json(), by=by, notes=notes)

    async def lighting_on(self, period: Period, by: str = "district", district: str | None = None) -> Table:
        places = self.places(district)
        start, end = period.bounds(self.calendar)
        figures = [LIGHTING_ON_FIGURES[c] for c in CLASSES]
        if by in PLACE_BY:
            sums = await self.store.inspections.class_sums(start, end)
            counts = []
            not_reported: dict[tuple[str, str], int] = defaultdict(int)
            for row in sums:
                place = Place(row["site_id"], row["district_id"], row["region"])
                figure = LIGHTING_ON_FIGURES[row["lighting_class"]].key
                should, unseen = float(row["should_be_lit"] or 0), float(row["not_reported"] or 0)
                counts.append((place, {figure: (float(row["lit"] or 0), should - unseen)}))
                if places.wanted(place):
                    for level in _levels(by):
                        not_reported[(places.key(level, place), figure)] += int(unseen)
            rows = _summary_rows(by, counts, figures, places, self.config)
            for row in rows:
                row["not_reported"] = not_reported.get((row["group"], row["figure"]), 0)
            columns = [*rates.RATE_COLUMNS[:4], Column("not_reported", "not reported", "int"), *rates.RATE_COLUMNS[4:]]
            columns[2], columns[3] = Column("numerator", "lit", "number"), Column("denominator", "should be lit (reported)", "number")
        elif by in ("day", "month"):
            rows = await self._lighting_on_by_time(start, end, by, places)
            columns = [
                Column("bucket", by, "date" if by == "day" else "text"),
                Column("title", "lighting class"),
                Column("inspections", "inspections", "int"),
                Column("numerator", "lit", "number"),
                Column("denominator", "should be lit (reported)", "number"),
                Column("not_reported", "not reported", "int"),
                Column("value", "rate", "share"),
                Column("target", "target", "share"),
                Column("met", "met", "bool"),
            ]
        else:
            raise ReportError(f"lighting-on is grouped by one of {', '.join((*PLACE_BY, 'day', 'month'))}, not {by!r}")
        instants = ", ".join(i.at for i in self.config.reports.inspections.instants)
        notes = [
            f"taken by the daemon each night at {instants} when the schedule has lights on",
            "rate = lit ÷ (should be lit − not reported); luminaires whose controller gave no fresh state are not reported",
        ]
        return Table("lighting-on", f"Lighting-on rate by {by}, {period.describe()}{_district_note(places)}", columns, rows,
                     period=period.as_json(), by=by, notes=notes)

    async def _lighting_on_by_time(self, start: int, end: int, by: str, places: Places) -> list[dict[str, Any]]:
        listed = await self.store.inspections.listed(start, end, places.only)
        tallies: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        inspections: dict[tuple[str, str], set[int]] = defaultdict(set)
        for row in listed:
            day = self.calendar.date_of(row["at"])
            bucket = day.isoformat() if by == "day" else day.strftime("%Y-%m")
            key = (bucket, row["lighting_class"])
            tally = tallies[key]
            tally[0] += float(row["lit"] or 0)
            tally[1] += float(row["should_be_lit"] or 0) - float(row["not_reported"] or 0)
            tally[2] += float(row["not_reported"] or 0)
            inspections[key].add(row["id"])
        targets = self.config.reports.targets
        regions = {d.region for d in self.inventory.districts.values() if places.only in (None, d.id)}
        out = []
        for (bucket, lighting_class), (lit, counted, unseen, _) in sorted(tallies.items()):
            figure = LIGHTING_ON_FIGURES[lighting_class]
            value = share(lit, counted)
            target = figure.target(targets.of(next(iter(regions)))) if len(regions) == 1 and figure.target else None
            out.append({
                "bucket": bucket, "figure": figure.key, "title": figure.title, "inspections": len(inspections[(bucket, lighting_class)]),
                "numerator": round(lit, 2), "denominator": round(counted, 2), "not_reported": int(unseen),
                "value": value, "target": target, "met": met(value, target),
            })
        return out

    async def energy(self, period: Period, by: str = "district", district: str | None = None, window: str | None = None) -> Table:
        ctx = self._energy_context(district)
        try:
            return await energy_report.energy_table(self.store.energy, ctx, period, by, self.window(window), window)
        except energy_report.EnergyReportError as exc:
            raise ReportError(str(exc)) from None

    def _energy_context(self, district: str | None) -> energy_report.EnergyContext:
        installation = self.config.installation
        return energy_report.EnergyContext(
            self.inventory, self.places(district), self.calendar, self.config.reports.energy.tariff,
            installation.energy, installation.location.lat, installation.location.lon,
        )

    def forecast(self, first: date | None, nights: int, by: str = "night", district: str | None = None) -> Table:
        if self.schedule is None:
            raise ReportError("this installation has no schedule to forecast from")
        ctx = forecast.ForecastContext(
            self.inventory, self.scenes, self.schedule, self.config.schedule.default_scene, self.curve,
            self.config.reports.energy.tariff, self.calendar, self.places(district),
        )
        try:
            return forecast.forecast_table(ctx, first or self.today(), nights, by)
        except forecast.ForecastError as exc:
            raise ReportError(str(exc)) from None

    async def workorders(self, period: Period, by: str = "district", district: str | None = None) -> Table:
        if by not in PLACE_BY:
            raise ReportError(f"work orders are grouped by one of {', '.join(PLACE_BY)}, not {by!r}")
        places = self.places(district)
        notes = ["on time: handled (closed) on time ÷ (cases due − cases deferred); closure: all closures ÷ the same (DOMAIN.md)"]
        rows: list[dict[str, Any]] = []
        if self.cases is None:
            notes.append("work orders are not connected to the reports (issue 14): nothing to count")
        else:
            start, end = period.bounds(self.calendar)
            counts = rates.case_counts(await self.cases.case_counts(start, end), places)
            rows = _summary_rows(by, counts, list(rates.CASE_FIGURES), places, self.config)
        return Table("workorders", f"Work orders by {by}, {period.describe()}{_district_note(places)}", rates.RATE_COLUMNS, rows,
                     period=period.as_json(), by=by, notes=notes)

    async def monthly(self, month: str) -> list[Table]:
        """The bureau's monthly workbook: one table per sheet."""
        try:
            period = Period.month(month, self.zone)
        except PeriodError as exc:
            raise ReportError(str(exc)) from None
        tables = [
            await self.rates(period, "district"),
            await self.lighting_on(period, "district"),
            await self.lighting_on(period, "day"),
            await self.energy(period, "district"),
            await self.energy(period, "site"),
            await self.energy(period, "day"),
            await self.workorders(period, "district"),
        ]
        names = ["rates", "lighting-on", "lighting-on by day", "energy by district", "energy by site", "energy by day", "work orders"]
        if self.schedule is not None:
            following = month_after(period.first)
            tables.append(self.forecast(following, (month_after(following) - following).days, "night"))
            names.append("forecast next month")
        for table, name in zip(tables, names, strict=True):
            table.name = name
        return tables


LEVELS = {"site": ("site", "region", AREA), "district": ("district", "region", AREA), "region": ("region", AREA), AREA: (AREA,)}


def _levels(by: str) -> tuple[str, ...]:
    """The groupings a table by ``by`` shows: its own, then the regions and the whole area."""
    return LEVELS[by]


def _summary_rows(by: str, counts: list[tuple[Place, Any]], figures: list[Figure], places: Places, config: Config) -> list[dict[str, Any]]:
    return [
        {"level": level, **row}
        for level in _levels(by)
        for row in judge(level, counts, figures, places, config.reports.targets)
    ]


def _district_note(places: Places) -> str:
    return f", {places.label('district', places.only)}" if places.only is not None else ""
