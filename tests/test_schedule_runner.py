"""The runner on a real AsyncIOScheduler: transitions fire "reconcile now", missed triggers and
clock jumps reconcile at once, and stop() leaves nothing behind."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest
from test_schedule_support import TZ, installation_config, schedule_of

from schedules.engine import Schedule
from schedules.runner import ScheduleRunner


def _near_schedule(*offsets_s: tuple[float, float]) -> tuple[Schedule, list[datetime]]:
    """Entries from now+a to now+b seconds (whole seconds), on every day."""
    now = datetime.now(TZ).replace(microsecond=0) + timedelta(seconds=1)
    entries, bounds = [], []
    for i, (a, b) in enumerate(offsets_s):
        start, end = now + timedelta(seconds=a), now + timedelta(seconds=b)
        if start.hour < 12 <= end.hour:
            pytest.skip("straddles noon, the operating-day boundary")  # pragma: no cover
        bounds += [start, end]
        entries.append(
            {"id": f"near-{i}", "days": "daily", "start": f"{start:%H:%M:%S}", "end": f"{end:%H:%M:%S}",
             "scene": "all-on", "target": "site:qiansimen-bridge", "priority": 1 + i}
        )
    base = installation_config()
    config = installation_config({**base.model_dump(by_alias=True, exclude={"schedule"}), "schedule": {"entries": entries}})
    return schedule_of(config)[0], sorted(bounds)


class Recorder:
    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.calls: list[tuple[float, str, list[str]]] = []
        self.event = asyncio.Event()

    async def __call__(self, reason: str) -> None:
        active = [e.reason.split(":")[0] for e in self.schedule.active(datetime.now(TZ))]
        self.calls.append((time.time(), reason, active))
        self.event.set()

    async def wait_for(self, count: int, limit_s: float = 4.0) -> None:
        async with asyncio.timeout(limit_s):
            while len(self.calls) < count:
                self.event.clear()
                await self.event.wait()


@pytest.fixture
async def runners() -> object:
    started: list[ScheduleRunner] = []
    yield started
    for runner in started:
        await runner.stop()
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert leftover == []


async def test_fires_reconcile_at_each_transition_and_at_start(runners: list[ScheduleRunner]) -> None:
    schedule, bounds = _near_schedule((1, 2))
    recorder = Recorder(schedule)
    runner = ScheduleRunner(schedule, recorder, zone=TZ)
    runners.append(runner)
    runner.start()
    assert runner.next_transition == bounds[0]
    await recorder.wait_for(3)
    (_, why0, active0), (t1, why1, active1), (t2, why2, active2) = recorder.calls
    assert why0 == "schedule runner started" and active0 == []
    assert why1 == f"schedule transition at {bounds[0].isoformat()}: +near-0 (all-on on site:qiansimen-bridge)"
    assert why2 == f"schedule transition at {bounds[1].isoformat()}: -near-0 (all-on on site:qiansimen-bridge)"
    assert active1 == ["near-0"] and active2 == []
    assert abs(t1 - bounds[0].timestamp()) < 1.0 and abs(t2 - bounds[1].timestamp()) < 1.0
    # Only the next transition is ever planned: the next is tomorrow's.
    assert runner.next_transition == bounds[0] + timedelta(days=1)


async def test_a_missed_trigger_reconciles_at_once(runners: list[ScheduleRunner]) -> None:
    schedule, bounds = _near_schedule((1, 30))
    recorder = Recorder(schedule)
    runner = ScheduleRunner(schedule, recorder, zone=TZ, misfire_grace_s=1)
    runners.append(runner)
    runner.start(reconcile=False)
    # The event loop is blocked (a synchronous call) across the transition and past the grace.
    time.sleep(max(0.0, bounds[0].timestamp() - time.time()) + 1.6)
    await recorder.wait_for(1)
    _, reason, active = recorder.calls[0]
    assert reason.startswith(f"missed schedule transition at {bounds[0].isoformat()}")
    assert active == ["near-0"]
    assert runner.next_transition == bounds[1]


async def test_a_clock_jump_reconciles_at_once_and_replans(runners: list[ScheduleRunner]) -> None:
    schedule, bounds = _near_schedule((600, 1200))
    shift = [0.0]
    recorder = Recorder(schedule)
    runner = ScheduleRunner(
        schedule, recorder, zone=TZ, watchdog_s=0.05, wall=lambda: time.time() + shift[0]
    )
    runners.append(runner)
    runner.start(reconcile=False)
    assert runner.next_transition == bounds[0]
    shift[0] = 900.0  # the wall clock steps forward 15 minutes: into the entry's window
    await recorder.wait_for(1, limit_s=2.0)
    assert recorder.calls[0][1] == "clock jump of +900 s"
    assert runner.next_transition == bounds[1]
    shift[0] = 0.0  # and back
    await recorder.wait_for(2, limit_s=2.0)
    assert recorder.calls[1][1] == "clock jump of -900 s"
    assert runner.next_transition == bounds[0]


async def test_a_failing_reconcile_does_not_stop_the_runner(runners: list[ScheduleRunner]) -> None:
    schedule, bounds = _near_schedule((1, 2))
    recorder = Recorder(schedule)

    async def failing(reason: str) -> None:
        await recorder(reason)
        raise RuntimeError("controller unreachable")

    runner = ScheduleRunner(schedule, failing, zone=TZ)
    runners.append(runner)
    runner.start()
    await recorder.wait_for(3)
    assert runner.next_transition == bounds[0] + timedelta(days=1)


async def test_stop_is_idempotent_and_start_twice_is_refused(runners: list[ScheduleRunner]) -> None:
    schedule, _ = _near_schedule((60, 120))
    runner = ScheduleRunner(schedule, Recorder(schedule), zone=TZ)
    runner.start(reconcile=False)
    with pytest.raises(RuntimeError, match="already running"):
        runner.start()
    await runner.stop()
    await runner.stop()
    assert not runner.running and runner.next_transition is None


async def test_start_warns_weeks_ahead_when_next_years_holidays_are_missing(
    runners: list[ScheduleRunner], caplog: pytest.LogCaptureFixture
) -> None:
    schedule, _ = schedule_of(installation_config())
    december = datetime(2026, 12, 1, 9, 0, tzinfo=TZ).timestamp()
    runner = ScheduleRunner(schedule, Recorder(schedule), zone=TZ, wall=lambda: december)
    runners.append(runner)
    with caplog.at_level("WARNING", logger="schedules.runner"):
        runner.start(reconcile=False)
    assert any("arrangement for 2027 is not known" in r.getMessage() for r in caplog.records)
    assert runner.next_transition is not None and runner.next_transition.date() == datetime(2026, 12, 1).date()


async def test_a_slow_reconcile_does_not_delay_the_next_transition(runners: list[ScheduleRunner]) -> None:
    schedule, bounds = _near_schedule((1, 2))
    recorder = Recorder(schedule)

    async def slow(reason: str) -> None:
        await recorder(reason)
        await asyncio.sleep(3)  # e.g. controllers timing out

    runner = ScheduleRunner(schedule, slow, zone=TZ)
    runners.append(runner)
    runner.start(reconcile=False)
    await recorder.wait_for(2)
    (_, why1, _), (t2, why2, _) = recorder.calls
    assert why1.startswith(f"schedule transition at {bounds[0].isoformat()}")
    assert why2.startswith(f"schedule transition at {bounds[1].isoformat()}")
    assert abs(t2 - bounds[1].timestamp()) < 1.0
