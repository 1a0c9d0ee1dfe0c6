"""The default schedule in the shipped config.yaml: valid, right on the nights that matter, fast."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from test_schedule_support import at

from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.resolve.desired import resolve
from lightctl.resolve.loading import load_config
from scenes.model import SceneBook
from schedules.builder import build
from schedules.engine import Schedule

CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


@pytest.fixture(scope="module")
def shipped() -> tuple[Config, Inventory, Schedule, SceneBook]:
    config = load_config(CONFIG)
    inventory = Inventory(config)
    return config, inventory, build(config, inventory), SceneBook(config.all_scenes(), inventory)


def _on(shipped: tuple[Config, Inventory, Schedule, SceneBook], instant: datetime, selector: str) -> set[bool]:
    _, inventory, schedule, book = shipped
    state, _ = resolve(instant, inventory, book, schedule)
    return {state[key].on for key in inventory.select(selector)}


def test_the_default_schedule_is_the_domain_pattern(shipped: tuple[Config, Inventory, Schedule, SceneBook]) -> None:
    config = shipped[0]
    ids = {entry.id for entry in config.schedule.entries}
    assert {"normal-night", "restday-night", "spring-festival-holiday", "lantern-nights", "decorations-workday",
            "show-summer", "show-winter", "nanan-maintenance"} <= ids
    # A working Tuesday in March: lit 19:30 to 21:30, decorations down.
    assert _on(shipped, at("2026-03-10 19:29"), "kind:landscape") == {False}
    assert _on(shipped, at("2026-03-10 19:30"), "kind:landscape") == {True}
    assert _on(shipped, at("2026-03-10 20:00"), "kind:decoration") == {False}
    assert _on(shipped, at("2026-03-10 21:30"), "kind:landscape") == {False}
    assert _on(shipped, at("2026-03-10 21:30"), "kind:street") == {True}
    # Spring Festival eve and holiday: everything, decorations included, until 01:00.
    assert _on(shipped, at("2026-02-17 00:45"), "*") == {True}
    assert _on(shipped, at("2026-02-17 01:00"), "kind:decoration") == {False}
    # Monday maintenance night in Nan'an: landscape dark there, street lights on, elsewhere lit.
    assert _on(shipped, at("2026-03-09 20:00"), "district:nanan, !kind:street") == {False}
    assert _on(shipped, at("2026-03-09 20:00"), "kind:street") == {True}
    assert _on(shipped, at("2026-03-09 20:00"), "district:yuzhong, !kind:street, !kind:decoration") == {True}
    # The same Monday inside the Spring Festival season: no maintenance.
    assert _on(shipped, at("2026-02-23 20:00"), "district:nanan") == {True}


def test_a_year_of_every_site_in_well_under_a_second(shipped: tuple[Config, Inventory, Schedule, SceneBook]) -> None:
    config, inventory, _, _ = shipped
    started = time.perf_counter()
    schedule = build(config, inventory)
    instant: datetime | None = at("2026-01-01 00:00")
    changes = 0
    while instant is not None and instant < at("2027-01-01 00:00"):
        schedule.active(instant)
        instant = schedule.next_change(instant)
        changes += 1
    elapsed = time.perf_counter() - started
    print(f"\n{changes} schedule changes over 2026 for {len(inventory.sites)} sites in {elapsed:.3f} s")
    assert changes > 3000
    assert elapsed < 1.0


def test_a_year_of_desired_states_at_every_change(shipped: tuple[Config, Inventory, Schedule, SceneBook]) -> None:
    """The same year through the core's resolve(): the desired state of every channel at each change."""
    config, inventory, _, book = shipped
    started = time.perf_counter()
    schedule = build(config, inventory)
    instant: datetime | None = at("2026-01-01 00:00")
    lit: list[int] = []
    while instant is not None and instant < at("2027-01-01 00:00"):
        state, _ = resolve(instant, inventory, book, schedule)
        lit.append(sum(s.on for s in state.values()))
        instant = schedule.next_change(instant)
    elapsed = time.perf_counter() - started
    print(f"\n{len(lit)} desired states of {len(inventory.channels)} channels over 2026 in {elapsed:.3f} s")
    assert max(lit) == len(inventory.channels) and min(lit) == 0
    assert elapsed < 3.0
