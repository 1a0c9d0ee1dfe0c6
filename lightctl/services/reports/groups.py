"""Grouping figures by site, district, region (main city / western districts) or the whole area,
and judging each against its region's target.

Counts are gathered per :class:`Place` (a site with its district and region, as they were when
counted), then summed per group. A group within one region is judged against that region's
target; the whole area, when it spans both, has no single target: it meets the plan when every
region meets its own (``target`` None, ``met`` from the regions).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lightctl.inventory.index import Inventory
from lightctl.model.installation import REGION_NAMES
from lightctl.model.reports import RegionTargets, Targets
from lightctl.services.reports.table import met, share

PLACE_GROUPINGS = ("site", "district", "region", "area")
AREA = "area"


class GroupingError(ValueError):
    """An unknown grouping or district: the message names what is known."""


@dataclass(frozen=True, slots=True)
class Place:
    site_id: str | None
    district_id: str
    region: str


@dataclass(frozen=True, slots=True)
class Figure:
    """One of the plan's figures: its key, its title, and its target in a region's targets."""

    key: str
    title: str
    target: Callable[[RegionTargets], float | None] | None


class Places:
    """Names and regions of the installation's sites and districts (current config)."""

    def __init__(self, inventory: Inventory, district: str | None = None) -> None:
        self.inventory = inventory
        self.only = self.district_id(district) if district is not None else None

    def district_id(self, name: str) -> str:
        for district in self.inventory.districts.values():
            if name in (district.id, district.name, district.name_en):
                return district.id
        known = ", ".join(f"{d.id} ({d.name})" for d in self.inventory.districts.values())
        raise GroupingError(f"unknown district {name!r}; known: {known}")

    def place_of_site(self, site_id: str, district_id: str) -> Place:
        return Place(site_id, district_id, self.region_of(district_id))

    def region_of(self, district_id: str) -> str:
        district = self.inventory.districts.get(district_id)
        return district.region if district is not None else "main_city"

    def wanted(self, place: Place) -> bool:
        return self.only is None or place.district_id == self.only

    def key(self, by: str, place: Place) -> str:
        if by == "site":
            return place.site_id if place.site_id is not None else f"{place.district_id}/-"
        if by == "district":
            return place.district_id
        if by == "region":
            return place.region
        if by == AREA:
            return AREA
        raise GroupingError(f"cannot group by {by!r}: expected one of {', '.join(PLACE_GROUPINGS)}")

    def label(self, by: str, key: str) -> str:
        if by == "site":
            site = self.inventory.sites.get(key)
            if site is not None:
                return f"{site.name} {site.name_en}"
            return f"{key.removesuffix('/-')} (no site)" if key.endswith("/-") else key
        if by == "district":
            district = self.inventory.districts.get(key)
            return f"{district.name} {district.name_en}" if district is not None else key
        if by == "region":
            return REGION_NAMES.get(key, key)
        return "全域 whole area" if self.only is None else f"{self.label('district', self.only)} (all)"


Counts = Mapping[str, tuple[float, float]]
"""Figure key -> (numerator, denominator)."""


def judge(
    by: str,
    counts: Iterable[tuple[Place, Counts]],
    figures: Sequence[Figure],
    places: Places,
    targets: Targets,
) -> list[dict[str, Any]]:
    """One row per group and figure: numerator, denominator, value, target, met (see the module)."""
    by_group: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    by_region: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    regions_of: dict[str, set[str]] = defaultdict(set)
    for place, figures_here in counts:
        if not places.wanted(place):
            continue
        key = places.key(by, place)
        regions_of[key].add(place.region)
        for figure_key, (numerator, denominator) in figures_here.items():
            for table, group in ((by_group, key), (by_region, place.region)):
                tally = table[group][figure_key]
                tally[0] += numerator
                tally[1] += denominator
    rows = []
    for key in sorted(by_group, key=lambda k: (k == AREA, k)):
        regions = regions_of[key]
        for figure in figures:
            numerator, denominator = by_group[key].get(figure.key, (0.0, 0.0))
            value = share(numerator, denominator)
            if len(regions) == 1:
                target = _target(targets.of(next(iter(regions))), figure)
                verdict = met(value, target)
            else:
                target = None
                verdicts = [
                    met(share(*by_region[r].get(figure.key, (0.0, 0.0))), _target(targets.of(r), figure)) for r in sorted(regions)
                ]
                verdict = None if any(v is None for v in verdicts) else all(verdicts)
            rows.append(
                {
                    "group": key,
                    "label": places.label(by, key),
                    "region": next(iter(regions)) if len(regions) == 1 else "mixed",
                    "figure": figure.key,
                    "title": figure.title,
                    "numerator": _number(numerator),
                    "denominator": _number(denominator),
                    "value": value,
                    "target": target,
                    "met": verdict,
                }
            )
    return rows


def _target(targets: RegionTargets, figure: Figure) -> float | None:
    return figure.target(targets) if figure.target is not None else None


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 2)
