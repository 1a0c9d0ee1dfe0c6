"""Property: what resolve() gives at any instant equals what firing every transition would have left.

The runner only wakes at ``next_change()`` and reconciles to ``resolve(that instant)``. If
next_change() ever skipped a change, the lights would stay wrong until the next firing; this test
walks the transitions from a random start to a random instant, on random schedules, and compares.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_schedule_support import at, installation_config, schedule_of

from lightctl.inventory.index import Inventory
from lightctl.resolve.desired import resolve
from scenes.model import SceneBook
from schedules.builder import build
from schedules.engine import Schedule

BASE = installation_config()
INVENTORY = Inventory(BASE)
BOOK = SceneBook(BASE.all_scenes(), INVENTORY)
DEFAULT, _ = schedule_of(BASE)
BASE_DATA = BASE.model_dump(by_alias=True, exclude={"schedule"})

DAY_TERMS = [
    "daily", "weekdays", "weekends", "mon", "sat", "workday", "restday", "holiday",
    "festival:spring_festival..festival:lantern", "season:05-01..09-30", "festival:mid_autumn",
]
SCENES = ["night-normal", "night-festival", "decorations-on", "all-off", "show-meili"]
TARGETS = ["*", "kind:decoration", "district:nanan", "tag:show", "site:shuangbei-bridge", "kind:street"]


def _clock(minutes: int) -> str:
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


@st.composite
def events(draw: st.DrawFn) -> object:
    if draw(st.booleans()):
        return draw(st.integers(12 * 60, 36 * 60 - 2))  # minutes after noon-day's midnight
    base = draw(st.sampled_from(["sunset", "dusk", "sunrise", "dawn"]))
    offset = draw(st.integers(-180, 180))
    text = f"{base} {'+' if offset >= 0 else '-'} {abs(offset)}m"
    if draw(st.booleans()):
        return {"at": text, "not_before": draw(st.sampled_from(["18:00", "19:00", "05:00"]))}
    return text


@st.composite
def schedules_(draw: st.DrawFn) -> Schedule:
    entries = []
    for i in range(draw(st.integers(1, 6))):
        start, end = draw(events()), draw(events())
        if isinstance(start, int) and isinstance(end, int):  # two clock times: in order (config refuses others)
            start, end = min(start, end), max(start, end) + 1
        entries.append(
            {
                "id": f"e{i}",
                "days": draw(st.lists(st.sampled_from(DAY_TERMS), min_size=1, max_size=2)),
                "start": _clock(start) if isinstance(start, int) else start,
                "end": _clock(end) if isinstance(end, int) else end,
                "scene": draw(st.sampled_from(SCENES)),
                "target": draw(st.sampled_from(TARGETS)),
                "priority": draw(st.integers(0, 4)),
            }
        )
    return build(installation_config({**BASE_DATA, "schedule": {"entries": entries}}), INVENTORY)


instants = st.integers(0, 364 * 86400).map(lambda s: at("2026-01-01 00:00") + timedelta(seconds=s, microseconds=s % 7))
horizons = st.integers(0, 3 * 86400).map(lambda s: timedelta(seconds=s))


def _walk(schedule: Schedule, start: datetime, until: datetime) -> tuple[datetime, int]:
    """The last instant at which the runner would have fired, from ``start`` to ``until``."""
    fired, count = start, 0
    while (following := schedule.next_change(fired)) is not None and following <= until:
        assert following > fired
        assert schedule.active(following) != schedule.active(following - timedelta(microseconds=1))
        fired, count = following, count + 1
    return fired, count


def _check(schedule: Schedule, start: datetime, horizon: timedelta) -> None:
    until = start + horizon
    fired, _ = _walk(schedule, start, until)
    expected = resolve(until, INVENTORY, BOOK, schedule)
    produced = resolve(fired, INVENTORY, BOOK, schedule)
    assert produced == expected, (start, fired, until)
    assert schedule.active(fired) == schedule.active(until)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=instants, horizon=horizons)
def test_default_schedule_transitions_reproduce_resolve(start: datetime, horizon: timedelta) -> None:
    _check(DEFAULT, start, horizon)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules_(), start=instants, horizon=horizons)
def test_random_schedules_transitions_reproduce_resolve(schedule: Schedule, start: datetime, horizon: timedelta) -> None:
    _check(schedule, start, horizon)


def test_the_walk_fires_every_change_of_a_festival_night() -> None:
    fired, count = _walk(DEFAULT, at("2026-02-16 12:00"), at("2026-02-17 12:00"))
    # street lights on (2 places), holiday night + restday + decorations on, confluence show on/off,
    # show on/off, decorations and restday off, holiday night off at 01:00, street lights off (2 places).
    assert count >= 10
    assert fired <= at("2026-02-17 12:00")
