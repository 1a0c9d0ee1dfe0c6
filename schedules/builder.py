"""Compile the ``schedule:`` section against the inventory into a pure ``Schedule``."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.model.installation import Site
from lightctl.model.schedule import EntryConfig
from schedules.calendars import OfficialCalendar
from schedules.daysets import DaySets
from schedules.engine import CompiledEntry, PlacedTarget, Schedule
from schedules.events import Place


def own_sun_sites(config: Config) -> list[Site]:
    """Sites far enough from the installation's location to get their own sun times."""
    limit = config.schedule.astronomy.own_times_beyond_km
    home = config.installation.location
    return [
        site
        for district in config.districts
        for site in district.sites
        if home.distance_km(site.location) > limit
    ]


def place_targets(entry: EntryConfig, config: Config, inventory: Inventory) -> tuple[PlacedTarget, ...]:
    """Split an entry's selector by the place whose sun times apply to each part.

    Clock-only entries and installations without far sites keep the selector as written."""
    home = Place("installation", config.installation.location.lat, config.installation.location.lon)
    uses_sun = entry.start.parsed.base != "clock" or entry.end.parsed.base != "clock"
    far = own_sun_sites(config) if uses_sun else []
    if not far:
        return (PlacedTarget(home, entry.target, ""),)
    selected = inventory.select(entry.target)
    out: list[PlacedTarget] = []
    rest = entry.target
    for site in far:
        site_keys = frozenset(key for key, info in inventory.channels.items() if info.site.id == site.id)
        members = site_keys & selected
        if not members:
            continue
        rest += f", !site:{site.id}"
        target = f"site:{site.id}"
        missing = sorted(site_keys - members)
        if missing:
            target += "".join(f", !channel:{ctrl}/{ch}" for ctrl, ch in missing)
        place = Place(site.id, site.location.lat, site.location.lon)
        out.append(PlacedTarget(place, target, f" (sun times of {site.id})"))
    if inventory.select(rest):
        out.insert(0, PlacedTarget(home, rest if out else entry.target, ""))
    return tuple(out)


def build(config: Config, inventory: Inventory, *, log_missing: bool = True) -> Schedule:
    """``log_missing``: log once per year outside the official calendar that gets evaluated."""
    section = config.schedule
    official = OfficialCalendar(section.official_years, log_missing=log_missing)
    day_sets = DaySets(section.day_sets, official)
    entries = []
    for order, entry in enumerate(section.entries):
        day_sets.check(entry.days)
        entries.append(
            CompiledEntry(
                id=entry.id,
                order=order,
                priority=entry.priority,
                scene=entry.scene,
                target=entry.target,
                days=entry.days,
                start=entry.start.parsed,
                end=entry.end.parsed,
                targets=place_targets(entry, config, inventory),
            )
        )
    return Schedule(entries, day_sets, official, ZoneInfo(config.installation.timezone))
