"""The fault rules and the alarm state machine, pure: frozen time, readings built in code."""

from __future__ import annotations

from typing import Any

from lightctl.inventory.index import Inventory
from lightctl.model.desired import RELEASED, Desired
from lightctl.model.faults import FaultsConfig, Severity
from lightctl.model.maintenance import FaultStatus
from lightctl.model.values import OFF, ChannelReading, ChannelState, ControllerReading, FaultKind
from lightctl.services.faults.rules import EMPTY, Memory, evaluate
from lightctl.services.faults.spec import compile_specs
from lightctl.services.faults.tracker import Tracker
from tests.conftest import build_config, installation_data, modbus_controller

K = FaultKind
ON = ChannelState(True, 100.0)
S = 1000  # ms


def setup(faults: dict[str, Any] | None = None, controllers: int = 2, per_site: int = 10) -> tuple[Any, Tracker]:
    data = installation_data([modbus_controller(f"m{i}", i, channels=3) for i in range(controllers)], per_site=per_site)
    if faults:
        data["faults"] = faults
    config = build_config(data)
    specs = compile_specs(Inventory(config), config.faults)
    return specs, Tracker(specs, config.faults)


def volts(a: float = 226.0, b: float = 225.0, c: float = 227.0, amps: float = 5.0) -> dict[str, float]:
    return {"voltage_l1_v": a, "voltage_l2_v": b, "voltage_l3_v": c, "current_l1_a": amps, "current_l2_a": amps, "current_l3_a": amps}


def reading(channels: dict[str, ChannelReading], measurements: dict[str, float] | None = None,
            faults: frozenset[FaultKind] = frozenset()) -> ControllerReading:
    return ControllerReading(0.0, channels, faults=faults, measurements=volts() if measurements is None else measurements)


def lit(power: float, level: float = 100.0, faults: frozenset[FaultKind] = frozenset()) -> ChannelReading:
    return ChannelReading(on=True, level=level, power_w=power, faults=faults)


class Feed:
    """Feeds readings of one controller through the rules and the tracker, with memory."""

    def __init__(self, specs: Any, tracker: Tracker, cid: str = "m0") -> None:
        self.specs, self.tracker, self.cid, self.memory = specs, tracker, cid, EMPTY

    def __call__(self, got: ControllerReading, desired: dict[str, Desired], now: int, held: bool = False) -> None:
        findings = evaluate(self.specs[self.cid], desired, got, self.memory, held)
        self.memory = findings.memory
        self.tracker.observe(self.cid, findings, desired, got, held, now)
        self.tracker.tick(now)


def open_kinds(tracker: Tracker) -> set[tuple[FaultKind, str | None]]:
    return {(r.kind, r.channel_id) for r in tracker.by_id.values()}


def test_lamp_failure_needs_two_low_readings_with_the_lamps_commanded_on() -> None:
    specs, tracker = setup()
    feed = Feed(specs, tracker)
    rated = specs["m0"].channels["c2"].rated_w  # 20 luminaires x 20 W
    want = {"c1": ON, "c2": ON, "c3": ON}
    healthy = {"c1": lit(200), "c2": lit(rated), "c3": lit(600)}
    feed(reading(healthy), want, 0)
    low = {**healthy, "c2": lit(rated * 0.5)}
    feed(reading(low), want, 10 * S)
    assert not tracker.by_id  # one low reading is not a fault
    feed(reading(low), want, 20 * S)
    (fault,) = tracker.by_id.values()
    assert (fault.kind, fault.controller_id, fault.channel_id) == (K.LAMP_FAILURE, "m0", "c2")
    assert fault.evidence == "200 W of 400 W expected at 100%"
    assert fault.status(20 * S) is FaultStatus.UNACKNOWLEDGED and fault.severity is Severity.ORDINARY
    # Commanded off: the rule cannot judge, the fault stays as it is.
    feed(reading({**low, "c2": ChannelReading(on=False, level=0.0, power_w=0.0)}), {**want, "c2": OFF}, 100 * S)
    assert fault.active and fault.clear_since is None
    # On again and healthy: cleared after the hold-off (30 s), not before.
    feed(reading(healthy), want, 200 * S)
    feed(reading(healthy), want, 220 * S)
    assert fault.active
    feed(reading(healthy), want, 231 * S)
    assert not fault.active and fault.cleared_how == "condition gone"


def test_burning_while_commanded_off_but_not_when_handed_back_or_held() -> None:
    specs, tracker = setup()
    feed = Feed(specs, tracker)
    off = {"c1": OFF, "c2": OFF, "c3": OFF}
    burning = {"c1": ChannelReading(on=False, level=0.0, power_w=0.0), "c2": ChannelReading(on=True, level=0.0, power_w=350.0),
               "c3": ChannelReading(on=False, level=0.0, power_w=0.0)}
    feed(reading(burning), {**off, "c2": RELEASED}, 0)
    feed(reading(burning), {**off, "c2": RELEASED}, 10 * S)
    feed(reading(burning), off, 20 * S, held=True)
    feed(reading(burning), off, 30 * S, held=True)
    assert not tracker.by_id
    feed(reading(burning), off, 40 * S)
    feed(reading(burning), off, 50 * S)
    (fault,) = tracker.by_id.values()
    assert fault.kind is K.STUCK_CONTACTOR and fault.evidence == "drawing 350 W while commanded off"


def test_supply_phase_and_voltage_from_measurements_with_the_sites_limits() -> None:
    specs, tracker = setup({"sites": [{"site": "site-0", "importance": "key", "over_voltage_v": 250}]})
    feed = Feed(specs, tracker)
    want = {"c1": OFF, "c2": OFF, "c3": OFF}
    dark = {ch: ChannelReading(on=False, level=0.0, power_w=0.0) for ch in want}
    feed(reading(dark, volts(a=252.0)), want, 0)
    (over,) = tracker.by_id.values()
    assert over.kind is K.OVER_VOLTAGE and over.evidence == "phase A 252.0 V > 250 V"
    assert over.severity is Severity.EMERGENCY  # serious, raised at a key site
    feed(reading(dark, volts(a=248.0)), want, 10 * S)  # inside the deadband: still over
    assert over.clear_since is None
    feed(reading(dark, volts(a=226.0, b=0.0)), want, 20 * S)
    assert (K.PHASE_LOSS, None) in open_kinds(tracker)
    phase = next(r for r in tracker.by_id.values() if r.kind is K.PHASE_LOSS)
    assert phase.evidence == "phase B 0 V (A 226 V, C 227 V)"


def test_a_trip_hides_the_lamp_fault_behind_it_and_shows_it_again_when_it_clears() -> None:
    specs, tracker = setup()
    feed = Feed(specs, tracker)
    want = {"c1": ON, "c2": ON, "c3": ON}
    rated = specs["m0"].channels["c3"].rated_w
    low = {"c1": lit(200), "c2": lit(400), "c3": lit(rated * 0.3)}
    feed(reading(low), want, 0)
    feed(reading(low), want, 10 * S)
    lamp = next(r for r in tracker.by_id.values() if r.kind is K.LAMP_FAILURE)
    assert lamp.alarm(10 * S)
    tripped = {**low, "c3": ChannelReading(on=False, level=100.0, power_w=0.0, faults=frozenset({K.BREAKER_TRIP}))}
    feed(reading(tripped), want, 20 * S)
    trip = next(r for r in tracker.by_id.values() if r.kind is K.BREAKER_TRIP)
    assert lamp.parent_id == trip.id and lamp.status(20 * S) is FaultStatus.SUPPRESSED and trip.alarm(20 * S)
    # The breaker is reset with the lamps still failing: the lamp fault is an alarm again.
    for t in (30, 40, 80):
        feed(reading(low), want, t * S)
    assert not trip.active and lamp.active and lamp.parent_id is None
    events = [(c.fault.kind, c.event) for c in tracker.drain()]
    assert (K.LAMP_FAILURE, "suppressed") in events and (K.LAMP_FAILURE, "annunciated") in events


def test_communication_lost_hides_everything_on_the_controller() -> None:
    specs, tracker = setup()
    feed = Feed(specs, tracker)
    feed(reading({"c1": lit(0, faults=frozenset({K.BREAKER_TRIP}))}, faults=frozenset({K.DOOR_OPEN})), {"c1": ON}, 0)
    assert len(tracker.alarms(0)) == 2
    tracker.condition("m0", K.COMM_LOST, "no reading for 30 s", 30 * S)
    (alarm,) = tracker.alarms(30 * S)
    assert alarm.kind is K.COMM_LOST and len(tracker.by_id) == 3


def test_every_cabinet_of_a_site_without_supply_is_one_site_fault() -> None:
    specs, tracker = setup(controllers=3, per_site=3)
    feeds = {cid: Feed(specs, tracker, cid) for cid in ("m0", "m1", "m2")}
    dead = volts(0.0, 0.0, 0.0, amps=0.0)
    want = {"c1": OFF}
    for cid, feed in feeds.items():
        feed(reading({"c1": ChannelReading(on=False, level=0.0, power_w=0.0)}), want, 0)
        tracker.note_metered(cid)
    for n, feed in enumerate(feeds.values()):
        feed(reading({"c1": ChannelReading(on=False, level=0.0, power_w=0.0)}, dead), want, (10 + n) * S)
    (alarm,) = tracker.alarms(20 * S)
    assert alarm.kind is K.SUPPLY_LOSS and alarm.controller_id is None and alarm.site_id == "site-0"
    assert alarm.evidence == "all 3 cabinets of the site without supply"
    cabinets = [r for r in tracker.by_id.values() if r.controller_id is not None]
    assert len(cabinets) == 3 and all(r.parent_id == alarm.id for r in cabinets)
    assert cabinets[0].evidence == "phases A, B, C at 0 V"


def test_a_fault_opening_and_clearing_too_often_is_held_open_as_chattering() -> None:
    specs, tracker = setup({"chatter_per_hour": 3, "clear_holdoff_s": 5, "chatter_stable_s": 600})
    feed = Feed(specs, tracker)
    want = {"c1": OFF}
    dark = {"c1": ChannelReading(on=False, level=0.0, power_w=0.0)}
    t = 0
    for _ in range(3):
        feed(reading(dark, faults=frozenset({K.DOOR_OPEN})), want, t * S)
        feed(reading(dark), want, (t + 10) * S)
        feed(reading(dark), want, (t + 20) * S)
        t += 60
    assert not tracker.by_id
    feed(reading(dark, faults=frozenset({K.DOOR_OPEN})), want, t * S)
    (door,) = tracker.by_id.values()
    assert door.chattering
    feed(reading(dark), want, (t + 10) * S)
    feed(reading(dark), want, (t + 300) * S)
    assert door.active  # held open until stable for chatter_stable_s
    feed(reading(dark), want, (t + 611) * S)
    assert not door.active and door.cleared_how == "stable again after chattering"


def test_a_shelved_point_stays_shelved_until_the_shelf_expires() -> None:
    specs, tracker = setup()
    feed = Feed(specs, tracker)
    want = {"c1": OFF}
    door = reading({"c1": ChannelReading(on=False, level=0.0, power_w=0.0)}, faults=frozenset({K.DOOR_OPEN}))
    feed(door, want, 0)
    (fault,) = tracker.by_id.values()
    tracker.shelve(fault.id, "duty", "bridge under repair", 3600 * S, 10 * S)
    assert not fault.alarm(10 * S) and fault.status(10 * S) is FaultStatus.SHELVED
    # It clears and comes back while the shelf holds: the new fault is shelved too.
    quiet = reading({"c1": ChannelReading(on=False, level=0.0, power_w=0.0)})
    feed(quiet, want, 20 * S)
    feed(quiet, want, 60 * S)
    feed(door, want, 100 * S)
    (again,) = tracker.by_id.values()
    assert again.id != fault.id and again.status(100 * S) is FaultStatus.SHELVED
    feed(door, want, 3601 * S)
    assert again.alarm(3601 * S)
    assert ("unshelved" in [c.event for c in tracker.drain() if c.fault is again])


def test_memory_is_shared_until_something_changes() -> None:
    specs, _ = setup()
    got = reading({"c1": lit(200), "c2": lit(400), "c3": lit(600)})
    findings = evaluate(specs["m0"], {"c1": ON, "c2": ON, "c3": ON}, got, EMPTY, False)
    assert findings.memory is EMPTY and findings.present == {}
    assert isinstance(findings.memory, Memory)


def test_the_config_section_refuses_what_cannot_work() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="under_voltage_v"):
        FaultsConfig.model_validate({"thresholds": {"under_voltage_v": 300}})
    with pytest.raises(ValidationError, match="either hours or working_days"):
        FaultsConfig.model_validate({"deadlines": {"serious": {"hours": 3, "working_days": 2}}})
    with pytest.raises(ValidationError, match="secret"):
        FaultsConfig.model_validate({"webhooks": [{"id": "w", "url": "http://x/y"}]})


def test_a_controller_removed_by_a_reload_takes_its_open_faults_with_it() -> None:
    specs, tracker = setup()
    Feed(specs, tracker, "m1")(reading({"c1": lit(0)}, faults=frozenset({K.DOOR_OPEN})), {"c1": OFF}, 0)
    (door,) = tracker.by_id.values()
    tracker.specs = {cid: spec for cid, spec in specs.items() if cid != "m1"}
    assert tracker.retire(10 * S) == 1
    assert not door.active and door.cleared_how == "removed from the configuration" and not tracker.by_id
