"""The reports in the daemon: the nightly lighting-on inspections, taken at the configured instants
(``reports.inspections.instants``) and stored, and the reports' object for the API.

An instant is a clock time of the operating day (``"22:00"``), or ``"switch-on + 30m"``: that long
after the night's first switch-on (the first of the schedule's transitions at which something is
lit where nothing was just before). An inspection is taken only when the daemon's desired state
has lights on then (an instant when the schedule lights nothing is skipped, and logged). The
service sleeps until the next instant in steps of at most a minute, so that a clock step never
makes it miss one by long; an instant that passed while the daemon was down is not made up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from lightctl.model.desired import DesiredState
from lightctl.model.reports import InspectionInstant
from lightctl.model.schedule import clock_in_day
from lightctl.model.times import to_ms
from lightctl.model.values import ChannelState
from lightctl.reconcile.outcomes import EngineEvent
from lightctl.resolve.desired import resolve
from lightctl.runtime.commands import CommandReport
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.observed import observed_now
from lightctl.services.reports.fault_records import FaultRecords, WorkOrderCases
from lightctl.services.reports.lighting_on import InspectionSettings, inspect
from lightctl.services.reports.service import Reports
from lightctl.store.inspections import Inspection
from schedules.engine import Schedule
from schedules.events import day_end, day_start, operating_day

log = logging.getLogger("lightctl.reports")

WAKE_S = 60.0
"""The longest the service sleeps at once (a clock step is noticed within this)."""


def any_on(state: DesiredState) -> bool:
    return any(isinstance(s, ChannelState) and s.on and s.level > 0 for s in state.values())


class ReportsService:
    """A :class:`lightctl.runtime.hooks.DaemonService`: takes the lighting-on inspections."""

    name = "reports"

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.reports = Reports(
            daemon.config, daemon.inventory, daemon.store, daemon.scenes,
            daemon.schedule if isinstance(daemon.schedule, Schedule) else None,
            faults=FaultRecords(daemon.store, daemon.inventory),
            cases=WorkOrderCases(daemon.store),
        )
        self.settings = daemon.config.reports.inspections
        self._task: asyncio.Task[None] | None = None
        self.taken: list[Inspection] = []
        """Inspections this service stored, newest last (bounded)."""

    async def start(self) -> None:
        self.reports.schedule = self.daemon.schedule if isinstance(self.daemon.schedule, Schedule) else None
        if self.settings.enabled and self.settings.instants:
            self._task = asyncio.create_task(self._run(), name="lighting-on inspections")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def observe(self, event: EngineEvent) -> None:
        return None

    def command_done(self, report: CommandReport) -> None:
        return None

    # -- when -----------------------------------------------------------------------------------

    def instants(self, night: date) -> Iterator[tuple[datetime, str]]:
        """The configured instants of operating day ``night``, as (when, what the config says)."""
        zone = self.daemon.tz
        for spec in self.settings.instants:
            kind, seconds = InspectionInstant.parse(spec.at)
            if kind == "clock":
                clock = time(seconds // 3600, seconds // 60 % 60, seconds % 60)
                yield datetime.combine(night, time(), tzinfo=zone) + clock_in_day(clock), spec.at
            else:
                switch_on = self.switch_on(night)
                if switch_on is not None:
                    yield switch_on + timedelta(seconds=seconds), spec.at

    def switch_on(self, night: date) -> datetime | None:
        """The night's first instant at which the schedule lights something after nothing."""
        schedule = self.reports.schedule
        if schedule is None:
            return None
        daemon = self.daemon
        start, end = day_start(night, schedule.zone), day_end(night, schedule.zone)
        default = daemon.config.schedule.default_scene
        for at in sorted({t.at for t in schedule.transitions(start, end) if t.action == "start"}):
            now, _ = resolve(at, daemon.inventory, daemon.scenes, schedule, (), default)
            before, _ = resolve(at - timedelta(microseconds=1), daemon.inventory, daemon.scenes, schedule, (), default)
            if any_on(now) and not any_on(before):
                return at
        return None

    def next_instant(self, after: datetime) -> tuple[datetime, str] | None:
        night = operating_day(after, self.daemon.tz)
        found = [
            (at, what)
            for day in (night - timedelta(days=1), night, night + timedelta(days=1))
            for at, what in self.instants(day)
            if at > after
        ]
        return min(found) if found else None

    async def _run(self) -> None:
        while True:
            upcoming = self.next_instant(self.daemon.now())
            if upcoming is None:
                await asyncio.sleep(WAKE_S)
                continue
            at, what = upcoming
            await self._sleep_until(at)
            try:
                await self.inspect_now(what, source="schedule")
            except Exception:
                log.exception("the lighting-on inspection at %s (%s) failed", at.isoformat(), what)

    async def _sleep_until(self, at: datetime) -> None:
        """Sleep until ``at`` by the daemon's clock, waking every WAKE_S to follow a clock step."""
        while True:
            wait = (at - self.daemon.now()).total_seconds()
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, WAKE_S))

    # -- taking one -----------------------------------------------------------------------------

    async def inspect_now(self, instant: str = "now", *, source: str = "operator") -> Inspection | None:
        """An inspection of the state now, stored; None when nothing should be lit now."""
        daemon = self.daemon
        desired, _ = daemon.desired_now()
        if not any_on(desired):
            log.info("lighting-on inspection (%s) skipped: the schedule lights nothing now", instant)
            return None
        reports = daemon.config.reports
        settings = InspectionSettings(daemon.clock(), self.settings.stale_s, reports.energy.lamp_fault_below, daemon.curve)
        at_ms = to_ms(daemon.clock())
        faulty = await self.reports.faults.faulty_luminaires(at_ms) if self.reports.faults is not None else None
        inspection = inspect(daemon.inventory, observed_now(daemon.engine), settings, at_ms=at_ms, instant=instant, source=source, faulty=faulty)
        await daemon.store.inspections.add(inspection)
        self.taken.append(inspection)
        del self.taken[:-50]
        should = sum(r.should_be_lit for r in inspection.classes)
        lit = sum(r.lit for r in inspection.classes)
        log.info("lighting-on inspection (%s): %.1f of %d luminaires lit", instant, lit, should)
        daemon.publish({"type": "inspection", "instant": instant, "should_be_lit": should, "lit": round(lit, 1)})
        return inspection


def reports_of(daemon: Daemon) -> ReportsService:
    """The daemon's reports service (attached by ``lightctl.runtime.wiring``), or one for a bare
    daemon (tests): its reports work, it takes no inspections by itself."""
    for service in daemon.services:
        if isinstance(service, ReportsService):
            return service
    return ReportsService(daemon)
