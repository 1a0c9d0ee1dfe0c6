"""Fires "reconcile now" at the schedule's transitions (APScheduler 3.11, AsyncIOScheduler).

Only the next transition is ever scheduled: after it fires, and once a day at noon (the start of
the operating day), the next one is computed again from ``ScheduleSource.next_change()``. What is
fired is always the daemon's ``reconcile_now(reason)``, never a write: reconciling computes
``resolve(now)``, so a late, skipped or repeated firing can never leave the lights wrong.

The runner reconciles at once, without waiting for the next transition, when:
* it starts (unless told not to),
* APScheduler reports a missed trigger (the loop was blocked past ``misfire_grace_s``),
* the wall clock jumps (NTP step, operator setting the time): a watchdog task on the monotonic clock
  compares the two clocks every ``watchdog_s``. APScheduler's own timer runs on the monotonic clock,
  so without this a forward jump would leave it sleeping past due transitions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from lightctl.model.desired import ScheduleSource
from schedules.engine import Schedule

log = logging.getLogger(__name__)

Reconcile = Callable[[str], Awaitable[object]]

TRANSITION_JOB = "schedule-next-transition"
DAILY_JOB = "schedule-daily-recompute"
WATCHDOG_S = 10.0
"""How often the watchdog compares the wall clock with the monotonic clock."""
JUMP_TOLERANCE_S = 2.0
"""A disagreement of the two clocks beyond this is a clock jump."""
MISFIRE_GRACE_S = 30
"""A transition fired later than this is reported missed (and reconciled at once anyway)."""
STOP_TIMEOUT_S = 5.0
CALENDAR_NOTICE_DAYS = 45
"""Warn this long ahead when the official holiday calendar does not know the coming days."""


class ScheduleRunner:
    def __init__(
        self,
        schedule: ScheduleSource,
        reconcile_now: Reconcile,
        *,
        zone: ZoneInfo,
        watchdog_s: float = WATCHDOG_S,
        jump_tolerance_s: float = JUMP_TOLERANCE_S,
        misfire_grace_s: int = MISFIRE_GRACE_S,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.schedule = schedule
        self.reconcile_now = reconcile_now
        self.zone = zone
        self.watchdog_s = watchdog_s
        self.jump_tolerance_s = jump_tolerance_s
        self.misfire_grace_s = misfire_grace_s
        self._wall = wall
        self._monotonic = monotonic
        self._scheduler: AsyncIOScheduler | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.next_transition: datetime | None = None
        self._calendar_warned: set[str] = set()
        self.fired: list[tuple[datetime, str]] = []
        """(when, reason) of every reconcile this runner asked for, newest last (bounded)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    def start(self, *, reconcile: bool = True) -> None:
        """Start inside the running event loop; by default reconcile at once."""
        if self._scheduler is not None:
            raise RuntimeError("the schedule runner is already running")
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=self.zone)
        scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        scheduler.add_job(
            self._daily, "cron", hour=12, minute=0, second=5, id=DAILY_JOB,
            coalesce=True, misfire_grace_time=3600, max_instances=1,
        )
        scheduler.start()
        self._scheduler = scheduler
        watch = self._watch_clock(self._wall(), self._monotonic())  # the baseline is taken now
        self._watchdog = asyncio.get_running_loop().create_task(watch, name="schedule-clock-watchdog")
        if reconcile:
            self._spawn("schedule runner started")
        self.reschedule()
        self._check_calendar()

    async def stop(self) -> None:
        """Stop firing; cancel the watchdog and any reconcile this runner started. Idempotent."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        watchdog, self._watchdog = self._watchdog, None
        pending = [t for t in (watchdog, *self._tasks) if t is not None]
        for task in pending:
            task.cancel()
        if pending:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down from a call_soon callback
        self.next_transition = None

    # ------------------------------------------------------------------ scheduling

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall(), tz=self.zone)

    def reschedule(self) -> datetime | None:
        """(Re)plan the single transition job at the next change after now."""
        scheduler = self._scheduler
        if scheduler is None:
            return None
        following = self.schedule.next_change(self.now())
        self.next_transition = following
        if following is None:
            if scheduler.get_job(TRANSITION_JOB) is not None:
                scheduler.remove_job(TRANSITION_JOB)
            log.info("no schedule transition ahead")
            return None
        scheduler.add_job(
            self._fire, "date", run_date=following, args=[following], id=TRANSITION_JOB,
            replace_existing=True, misfire_grace_time=self.misfire_grace_s, coalesce=True,
        )
        log.debug("next schedule transition at %s", following.isoformat())
        return following

    async def _fire(self, planned: datetime) -> None:
        # Plan the next transition first and reconcile in a task of its own: a slow reconcile (a
        # queue of operator commands, controllers timing out) never delays or swallows the next
        # firing, and reconciling resolves at the moment it runs, so nothing between is lost.
        self.reschedule()
        self._spawn(f"schedule transition at {planned.isoformat()}: {self.describe(planned)}")

    def describe(self, instant: datetime) -> str:
        """What changes at ``instant``: ``+weekday-night (night-normal on *), -late (...)``."""
        before = set(self.schedule.active(instant - timedelta(microseconds=1)))
        after = set(self.schedule.active(instant))
        parts = [f"-{e.reason.split(':')[0]} ({e.scene} on {e.target})" for e in before - after]
        parts += [f"+{e.reason.split(':')[0]} ({e.scene} on {e.target})" for e in after - before]
        return ", ".join(sorted(parts, key=lambda p: p[0] != "-")) or "no change"

    async def _daily(self) -> None:
        self.reschedule()
        self._check_calendar()

    def _check_calendar(self) -> None:
        """Tell the operator, weeks ahead, that next year's official holidays are not loaded."""
        if not isinstance(self.schedule, Schedule):
            return
        today = self.now().date()
        for warning in self.schedule.calendar_warnings(today, today + timedelta(days=CALENDAR_NOTICE_DAYS)):
            if warning not in self._calendar_warned:
                self._calendar_warned.add(warning)
                log.warning("%s", warning)

    def _on_missed(self, event: JobExecutionEvent) -> None:
        if event.job_id != TRANSITION_JOB:
            return
        planned = event.scheduled_run_time
        late = (self.now() - planned).total_seconds()
        log.warning("schedule transition at %s missed (%.0f s late): reconciling now", planned.isoformat(), late)
        self._spawn(f"missed schedule transition at {planned.isoformat()} ({late:.0f} s late)")
        self.reschedule()

    async def _watch_clock(self, last_wall: float, last_mono: float) -> None:
        while True:
            await asyncio.sleep(self.watchdog_s)
            wall, mono = self._wall(), self._monotonic()
            jump = (wall - last_wall) - (mono - last_mono)
            last_wall, last_mono = wall, mono
            if abs(jump) > self.jump_tolerance_s:
                log.warning("wall clock jumped by %+.1f s: reconciling now", jump)
                self._spawn(f"clock jump of {jump:+.0f} s")
                self.reschedule()
                continue
            due = self.next_transition
            if due is not None and (self.now() - due).total_seconds() > self.misfire_grace_s + self.watchdog_s:
                log.warning("schedule transition at %s did not fire: reconciling now", due.isoformat())
                self._spawn(f"overdue schedule transition at {due.isoformat()}")
                self.reschedule()

    # ------------------------------------------------------------------ reconcile

    def _spawn(self, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self._reconcile(reason), name=f"reconcile: {reason}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconcile(self, reason: str) -> None:
        self.fired.append((self.now(), reason))
        del self.fired[:-100]
        try:
            await self.reconcile_now(reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconcile after %r failed", reason)


async def run_until_cancelled(
    schedule: ScheduleSource, reconcile_now: Reconcile, *, zone: ZoneInfo, wall: Callable[[], float] = time.time
) -> None:
    """Run a ScheduleRunner as one task (the daemon keeps it and cancels it on stop)."""
    runner = ScheduleRunner(schedule, reconcile_now, zone=zone, wall=wall)
    runner.start(reconcile=False)  # the daemon has just reconciled at start-up
    try:
        await asyncio.Event().wait()
    finally:
        await runner.stop()
