"""The fault service in the daemon (a ``DaemonService``): engine events in, the service's calls out.

Readings go to the rules with the engine's desired state of the controller and whether a show
holds it; link changes and every command's or convergence's outcome go to the timers of
communication lost and unconfirmed commands. The daemon's own doings never look like a field
fault: a command refused as *busy* (the controller was held by something of ours) is no outcome,
a show's cues (sent without read-back) are none either, and a held controller's silence and
pending channels are the show's.

A ticker runs the timers once a second and records the changes in batches; the notifier
(``lightctl.runtime.notifier``) delivers the outbox; the overdue check runs every minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lightctl.model.config import Config
from lightctl.model.times import now_ms
from lightctl.model.values import ControllerReading
from lightctl.reconcile.controller import Runtime, matches
from lightctl.reconcile.outcomes import (
    ControllerOutcome,
    ConvergedEvent,
    EngineEvent,
    LinkEvent,
    ReadingEvent,
    Status,
)
from lightctl.runtime.commands import CommandReport
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.notifier import Notifier
from lightctl.services.faults.desk import WorkOrderDesk
from lightctl.services.faults.service import FaultService
from lightctl.store import StoreWriteFailed

log = logging.getLogger("lightctl.faults")

TICK_S = 1.0
FLUSH_S = 0.25
OVERDUE_CHECK_S = 60.0
NOT_OUTCOMES = frozenset({"busy"})
"""Error kinds that say the daemon's own work held the controller: nothing about the device."""


class Faults:
    """:class:`~lightctl.runtime.hooks.DaemonService` for faults, work orders and notifications."""

    name = "faults"

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.service = FaultService(daemon.config, daemon.inventory, daemon.store, publish=daemon.publish)
        self.service.held = self._held
        self.desk = WorkOrderDesk(self.service)
        self.notifier = Notifier(daemon.store, lambda: self.service.config)
        self.service.wake_notifier = self.notifier.wake
        self._tasks: list[asyncio.Task[None]] = []
        self._pushes_known = False
        self.overdue_check_s = OVERDUE_CHECK_S
        daemon.telemetry.registry.register(_FaultCollector(self))

    def _held(self, cid: str) -> bool:
        rt = self.daemon.engine.runtimes.get(cid)
        return rt is not None and rt.held

    async def start(self) -> None:
        await self.service.start(now_ms())
        self._tasks = [
            asyncio.create_task(self._tick(), name="faults-tick"),
            asyncio.create_task(self._overdue(), name="faults-overdue"),
            asyncio.create_task(self.notifier.run(), name="faults-notifier"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await self.service.save_hours(now_ms())
        except StoreWriteFailed as exc:
            log.error("faults: the last changes could not be recorded at stop: %s", exc)
        await self.notifier.close()

    async def reload(self, config: Config) -> None:
        self.service.reconfigure(config, self.daemon.inventory, now_ms())
        self._pushes_known = False

    # -- engine events ---------------------------------------------------------------------------

    def observe(self, event: EngineEvent) -> None:
        service = self.service
        if isinstance(event, ReadingEvent):
            rt = self.daemon.engine.runtimes.get(event.controller_id)
            if rt is None:
                return
            now = now_ms()
            service.reading(event.controller_id, event.reading, rt.desired, rt.held, now)
            if event.controller_id in service.unconfirmed and not rt.held and self._in_desired_state(rt, event.reading):
                service.outcome(event.controller_id, True, None, now)
        elif isinstance(event, LinkEvent):
            service.link(event.controller_id, event.state.value == "online", event.error, now_ms())
        elif isinstance(event, ConvergedEvent):
            self._outcomes([event.outcome])

    @staticmethod
    def _in_desired_state(rt: Runtime, reading: ControllerReading) -> bool:
        """The controller shows what is wanted of it: confirmed by the engine, or read so (the
        fault is gone even if the engine's next convergence is a while away)."""
        if not rt.pending():
            return True
        tolerance = rt.driver.level_tolerance
        return all(matches(reading.channels.get(ch), state, tolerance) for ch, state in rt.desired.items())

    def command_done(self, report: CommandReport) -> None:
        self._outcomes(report.outcome.controllers.values())

    def _outcomes(self, outcomes: Iterable[ControllerOutcome]) -> None:
        now = now_ms()
        for outcome in outcomes:
            if outcome.status is Status.SENT or outcome.error_kind in NOT_OUTCOMES:
                continue
            detail = outcome.error if outcome.error is None else f"{outcome.error_kind}: {outcome.error}"
            self.service.outcome(outcome.controller_id, outcome.status is Status.CONFIRMED, detail, now)

    # -- timers ----------------------------------------------------------------------------------

    def _learn_pushes(self) -> None:
        """Which controllers push, and how often their drivers promise a reading (known once the
        engine's supervisors have subscribed)."""
        for cid, rt in self.daemon.engine.runtimes.items():
            self.service.expect_pushes(cid, rt.driver.push_interval_s() if rt.pushed else None)
        self._pushes_known = True

    async def _tick(self) -> None:
        last_flush = 0.0
        while True:
            await asyncio.sleep(min(TICK_S, FLUSH_S))
            try:
                if not self._pushes_known and self.daemon.engine.runtimes:
                    self._learn_pushes()
                now = now_ms()
                self.service.tick(now)
                if self.service.pending() and time.monotonic() - last_flush >= FLUSH_S:
                    last_flush = time.monotonic()
                    await self.service.flush(now)
            except StoreWriteFailed as exc:
                log.warning("faults: changes kept until the store writes again: %s", exc)
            except Exception:
                log.exception("faults: tick failed")

    async def _overdue(self) -> None:
        while True:
            await asyncio.sleep(self.overdue_check_s)
            try:
                await self.desk.check_overdue(now_ms())
            except StoreWriteFailed as exc:
                log.warning("faults: overdue work orders not told yet: %s", exc)
            except Exception:
                log.exception("faults: overdue check failed")


class _FaultCollector(Collector):
    """Open faults by kind, severity and status, and the outbox, read when scraped."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def collect(self) -> Iterable[GaugeMetricFamily]:
        now = now_ms()
        family = GaugeMetricFamily("lightctl_faults_open", "Open faults by kind, severity and status", labels=["kind", "severity", "status"])
        counts = Counter((r.kind.value, r.severity.value, r.status(now).value) for r in self.faults.service.tracker.by_id.values())
        for (kind, severity, status), n in sorted(counts.items()):
            family.add_metric([kind, severity, status], n)
        yield family
        yield GaugeMetricFamily(
            "lightctl_fault_eval_cpu_seconds", "CPU spent by the fault rules on readings since start",
            value=self.faults.service.eval_cpu_s,
        )
