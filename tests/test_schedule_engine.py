"""The pure engine with frozen instants: sun events, past-midnight nights, priorities, layers."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import pytest
from astral import Observer
from astral.sun import sun
from test_schedule_support import TZ, active_ids, at, installation_config, load_data, schedule_of

from lightctl.model.desired import Layer
from lightctl.model.values import OFF
from lightctl.resolve.desired import resolve
from scenes.model import SceneBook
from schedules.events import operating_day


def _resolved(instant: datetime, layers: tuple[Layer, ...] = ()) -> dict[tuple[str, str], bool]:
    config = installation_config()
    schedule, inventory = schedule_of(config)
    state, _ = resolve(instant, inventory, SceneBook(config.all_scenes(), inventory), schedule, layers)
    return {key: value.on for key, value in state.items()}


def test_sun_entry_follows_astral_all_year_at_each_place() -> None:
    """street-dusk-to-dawn: sunset - 10m to sunrise + 10m, every evening of 2026, to the second."""
    config = installation_config()
    schedule, _ = schedule_of(config)
    places = {
        "kind:street, !site:shuangbei-bridge": (29.5686, 106.5804),
        "site:shuangbei-bridge, !channel:sbq-c01/c1": (29.600, 106.450),
    }
    starts = {target: 0 for target in places}
    for transition in schedule.transitions(at("2026-01-01 12:00"), at("2027-01-01 12:00")):
        if transition.entry != "street-dusk-to-dawn":
            continue
        lat, lon = places[transition.target]
        if transition.action == "start":
            expected = sun(Observer(lat, lon), date=transition.at.date(), tzinfo=TZ)["sunset"] - timedelta(minutes=10)
            starts[transition.target] += 1
        else:
            expected = sun(Observer(lat, lon), date=transition.at.date(), tzinfo=TZ)["sunrise"] + timedelta(minutes=10)
        assert abs((transition.at - expected).total_seconds()) < 1.0, transition
        assert transition.at.utcoffset() == timedelta(hours=8)
    assert starts == dict.fromkeys(places, 365)


def test_the_far_site_gets_its_own_sun_times() -> None:
    schedule, _ = schedule_of(installation_config())
    windows = [w for w in schedule.windows(date(2026, 6, 21)) if w.entry.id == "street-dusk-to-dawn"]
    home, far = sorted(windows, key=lambda w: w.start)
    assert far.placed.target == "site:shuangbei-bridge, !channel:sbq-c01/c1"
    # 0.13 degrees further west: the sun sets about half a minute later.
    assert 20 < (far.start - home.start).total_seconds() < 45


def test_not_before_clamps_an_early_sunset() -> None:
    data = load_data()
    data["schedule"]["entries"] = [
        {
            "id": "early",
            "days": "daily",
            "start": {"at": "sunset - 1h", "not_before": "18:30"},
            "end": "dusk + 2h",
            "scene": "night-normal",
            "target": "site:qiansimen-bridge",
            "priority": 1,
        }
    ]
    schedule, _ = schedule_of(installation_config(data))
    (winter,) = schedule.windows(date(2026, 12, 21))
    assert winter.start == at("2026-12-21 18:30")  # sunset 17:58, minus an hour, clamped
    assert winter.end == at("2026-12-21 20:25:35")  # civil dusk 18:25:35 + 2 h
    (summer,) = schedule.windows(date(2026, 6, 21))
    sunset = sun(Observer(29.5686, 106.5804), date=date(2026, 6, 21), tzinfo=TZ)["sunset"]
    assert summer.start == sunset.replace(microsecond=0) - timedelta(hours=1)  # 18:56, not clamped
    assert summer.start > at("2026-06-21 18:30")


def test_a_night_belongs_to_the_evening_it_started() -> None:
    schedule, _ = schedule_of(installation_config())
    # Monday 23 Feb 2026 is the holiday's last evening: 18:30 to 01:00 on Tuesday.
    assert operating_day(at("2026-02-24 00:59"), TZ) == date(2026, 2, 23)
    assert active_ids(schedule, at("2026-02-24 00:59"))[-1] == "spring-festival-holiday"
    assert "spring-festival-holiday" not in active_ids(schedule, at("2026-02-24 01:00"))
    # Tuesday 24 Feb is a working day before the Lantern Festival: 18:30 to 23:00, no past-midnight.
    assert active_ids(schedule, at("2026-02-24 18:45"))[-1] == "lantern-nights"
    assert "lantern-nights" not in active_ids(schedule, at("2026-02-24 23:00"))
    assert "spring-festival-holiday" not in active_ids(schedule, at("2026-02-25 00:30"))
    # New Year's Eve 2026 (16 Feb) is lit by the holiday entry too.
    assert active_ids(schedule, at("2026-02-17 00:30"))[-1] == "spring-festival-holiday"


def test_priorities_lowest_first_and_the_highest_wins_per_channel() -> None:
    schedule, _ = schedule_of(installation_config())
    entries = schedule.active(at("2026-02-16 20:45"))
    assert [e.priority for e in entries] == sorted(e.priority for e in entries)
    assert [e.reason.split(":")[0] for e in entries] == [
        "street-dusk-to-dawn", "street-dusk-to-dawn", "restday-night", "decorations-restday",
        "spring-festival-holiday", "confluence-show", "show-winter",
    ]
    assert entries[-2].reason == "confluence-show: 20:40 to 20:55"
    assert (entries[-1].scene, entries[-1].target, entries[-1].priority) == ("show-meili", "tag:show, !kind:decoration", 40)
    state = _resolved(at("2026-02-16 20:45"))
    assert all(state.values())  # festival night: everything lit, decorations included


def test_decorations_only_inside_their_window() -> None:
    inside = _resolved(at("2026-02-11 20:00"))  # 腊月二十四, a working day
    after = _resolved(at("2026-03-04 20:00"))  # the day after the Lantern Festival
    for key in (("ctm-c01", "c2"), ("jbz-c01", "c2"), ("nbl-c01", "c2")):
        assert inside[key] is True
        assert after[key] is False
    assert after[("ctm-c01", "c1")] is True and after[("jbz-c01", "c1")] is True


def test_show_slots_and_their_seasonal_start() -> None:
    schedule, _ = schedule_of(installation_config())
    # Saturday 2 May 2026 (May Day holiday): 21:00; Saturday 3 Oct 2026 (National Day): 20:30.
    assert "show-summer" in active_ids(schedule, at("2026-05-02 21:00"))
    assert "show-summer" not in active_ids(schedule, at("2026-05-02 20:45"))
    assert "show-winter" in active_ids(schedule, at("2026-10-03 20:30"))
    # Tuesday 5 May 2026 is still the May Day holiday; Wednesday 6 May is not.
    assert "show-summer" in active_ids(schedule, at("2026-05-05 21:10"))
    assert "show-summer" not in active_ids(schedule, at("2026-05-06 21:10"))
    # A Saturday in April: the winter start.
    assert "show-winter" in active_ids(schedule, at("2026-04-25 20:35"))
    # The show lights the show sites, but never decorations outside their window.
    state = _resolved(at("2026-03-07 20:45"))
    assert state[("jbz-c01", "c1")] is True and state[("jbz-c01", "c2")] is False


def test_weekly_maintenance_night_for_one_district() -> None:
    monday = _resolved(at("2026-03-09 20:00"))
    assert monday[("nbl-c01", "c1")] is False  # Nan'an landscape off
    assert monday[("nbl-c01", "c3")] is True  # its street lights stay on
    assert monday[("ctm-c01", "c1")] is True  # other districts as usual
    holiday_monday = _resolved(at("2026-02-23 20:00"))  # inside the Spring Festival holiday
    assert holiday_monday[("nbl-c01", "c1")] is True


def test_layers_sit_above_the_schedule_and_an_override_ends_at_the_next_transition() -> None:
    """The core keeps overrides and curtailment; 'until the next transition' uses next_change()."""
    config = installation_config()
    schedule, inventory = schedule_of(config)
    book = SceneBook(config.all_scenes(), inventory)
    now = at("2026-03-10 19:45")
    until = schedule.next_change(now)
    assert until == at("2026-03-10 20:40")  # the confluence show
    override = Layer("override", "all-off", "site:jiangbeizui-cbd", "operator: hold dark")
    curtail = Layer("curtail", "all-off", "tag:show", "load shedding")
    for instant, layers in ((now, (override,)), (until - timedelta(seconds=1), (override,))):
        state, why = resolve(instant, inventory, book, schedule, layers)
        assert state[("jbz-c01", "c1")] == OFF and why[("jbz-c01", "c1")].startswith("override")
        assert state[("qsm-c01", "c1")].on
    state, _ = resolve(until, inventory, book, schedule, ())  # the override has expired
    assert state[("jbz-c01", "c1")].on
    state, why = resolve(until, inventory, book, schedule, (override, curtail))
    assert state[("ctm-c01", "c1")] == OFF and why[("ctm-c01", "c1")].startswith("curtail")


def test_next_change_skips_instants_where_nothing_changes() -> None:
    schedule, _ = schedule_of(installation_config())
    after = at("2026-03-10 21:30")
    following = schedule.next_change(after)
    assert following is not None and following.date() == date(2026, 3, 11)  # street lights off at sunrise
    assert schedule.active(following) != schedule.active(following - timedelta(microseconds=1))
    empty = installation_config({**load_data(), "schedule": {}})
    assert schedule_of(empty)[0].next_change(after) is None


def test_naive_times_are_refused() -> None:
    schedule, _ = schedule_of(installation_config())
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.active(datetime(2026, 3, 10, 20, 0))


def test_a_whole_year_for_every_site_is_well_under_a_second() -> None:
    config = installation_config()
    started = time.perf_counter()
    schedule, _ = schedule_of(config)
    instant: datetime | None = at("2026-01-01 00:00")
    changes = 0
    while instant is not None and instant < at("2027-01-01 00:00"):
        schedule.active(instant)
        instant = schedule.next_change(instant)
        changes += 1
    elapsed = time.perf_counter() - started
    assert changes > 3000
    assert elapsed < 1.0, f"{changes} transitions in {elapsed:.3f} s"


def test_a_far_site_without_controllers_is_no_place_of_its_own() -> None:
    data = load_data()
    data["districts"][-1]["sites"].append(
        {
            "id": "beibei-old-town",
            "name": "北碚老街",
            "name_en": "Beibei old town",
            "location": {"lat": 29.826, "lon": 106.437},
            "legacy": [{"id": "tc1", "luminaires": {"count": 40, "kind": "landscape", "led": False, "watts": 70}}],
        }
    )
    schedule, _ = schedule_of(installation_config(data))
    targets = {w.placed.target for w in schedule.windows(date(2026, 3, 10)) if w.entry.id == "street-dusk-to-dawn"}
    assert targets == {"kind:street, !site:shuangbei-bridge", "site:shuangbei-bridge, !channel:sbq-c01/c1"}
