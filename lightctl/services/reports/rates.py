"""The action plan's rates (DOMAIN.md, "Targets" and "Metrics and how they are computed"), each
with its numerator, denominator, target and verdict, per group.

* **Intelligent-control rate**: luminaires on channels the centre switches remotely ÷ all
  luminaires of that kind in the inventory, legacy time-clock circuits included. **LED share**:
  LED luminaires ÷ all of that kind. Street lights are kind ``street``; landscape lighting (景观灯饰)
  is ``landscape`` and ``decoration``. Both are the inventory as configured now.
* **Facility condition rate** (设施完好率): luminaires in service ÷ all remotely controlled ones,
  road lighting and landscape lighting apart, summed over the period's lighting-on inspections
  (each inspection notes the luminaires out of service then: see ``lighting_on``).
* **Controllers online**: online ÷ all, summed over the same inspections.
* **Cases handled / closed on time** (案件按时处置率 / 按期结案率): handled (closed) on time ÷
  (cases due − cases deferred); closure rate: all closures ÷ the same. From the work orders
  (:class:`lightctl.services.reports.sources.CaseSource`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from lightctl.inventory.index import Inventory
from lightctl.services.reports.groups import Counts, Figure, Place, Places
from lightctl.services.reports.sources import CaseCounts
from lightctl.services.reports.table import Column, share

STREET_CONTROL = Figure("street_intelligent_control", "路灯智能控制率 street-light intelligent-control rate", lambda t: t.street_intelligent_control)
LANDSCAPE_CONTROL = Figure(
    "landscape_intelligent_control", "景观灯饰智能控制率 landscape intelligent-control rate", lambda t: t.landscape_intelligent_control
)
STREET_LED = Figure("street_led_share", "LED路灯占比 LED share of street lights", lambda t: t.street_led_share)
LANDSCAPE_LED = Figure("landscape_led_share", "景观灯饰LED占比 LED share of landscape lights", lambda t: t.landscape_led_share)
ROAD_CONDITION = Figure("road_facility_condition", "道路照明设施完好率 road lighting in service", lambda t: t.road_facility_condition)
LANDSCAPE_CONDITION = Figure(
    "landscape_facility_condition", "景观照明设施完好率 landscape lighting in service", lambda t: t.landscape_facility_condition
)
ONLINE = Figure("controllers_online", "控制器在线率 controllers online (at the inspections)", lambda t: t.controllers_online)
HANDLED_ON_TIME = Figure("case_handling_on_time", "案件按时处置率 cases handled on time", lambda t: t.case_handling_on_time)
CLOSED_ON_TIME = Figure("case_closure_on_time", "案件按时结案率 cases closed on time", lambda t: t.case_closure_on_time)
CLOSED = Figure("case_closure", "结案率 cases closed", None)

INVENTORY_FIGURES = (STREET_CONTROL, LANDSCAPE_CONTROL, STREET_LED, LANDSCAPE_LED)
INSPECTION_FIGURES = (ROAD_CONDITION, LANDSCAPE_CONDITION, ONLINE)
CASE_FIGURES = (HANDLED_ON_TIME, CLOSED_ON_TIME, CLOSED)
RATE_FIGURES = (*INVENTORY_FIGURES, *INSPECTION_FIGURES, *CASE_FIGURES)

RATE_COLUMNS = (
    Column("label", "group"),
    Column("title", "figure"),
    Column("numerator", "numerator", "number"),
    Column("denominator", "denominator", "number"),
    Column("value", "rate", "share"),
    Column("target", "target", "share"),
    Column("met", "met", "bool"),
)


def inventory_counts(inventory: Inventory, places: Places) -> list[tuple[Place, Counts]]:
    """Per site: luminaires remotely controlled and LED, of street and of landscape lighting."""
    tallies: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    for batch, remote, site_id, district_id in inventory.luminaire_batches():
        street = batch.kind == "street"
        figures = tallies[(site_id, district_id)]
        for figure, counted in (
            (STREET_CONTROL if street else LANDSCAPE_CONTROL, remote),
            (STREET_LED if street else LANDSCAPE_LED, batch.led),
        ):
            _count(figures[figure.key], batch.count, counted)
    return [
        (places.place_of_site(site_id, district_id), {k: (v[0], v[1]) for k, v in figures.items()})
        for (site_id, district_id), figures in tallies.items()
    ]


def _count(tally: list[float], count: int, counted: bool) -> None:
    """One batch into a (numerator, denominator) tally: the one place a share of luminaires is counted."""
    tally[0] += count if counted else 0
    tally[1] += count


def kind_shares(inventory: Inventory) -> dict[str, dict[str, Any]]:
    """Per kind of luminaire (and ``all``): the intelligent-control rate and the LED share, for
    the live figures (``/api/v1/metrics``, the status page)."""
    control: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    led: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for batch, remote, _site, _district in inventory.luminaire_batches():
        for kind in (batch.kind, "all"):
            _count(control[kind], batch.count, remote)
            _count(led[kind], batch.count, batch.led)
    return {
        kind: {
            "luminaires": int(control[kind][1]),
            "remotely_controlled": int(control[kind][0]),
            "intelligent_control_rate": share(control[kind][0], control[kind][1]),
            "led": int(led[kind][0]),
            "led_share": share(led[kind][0], led[kind][1]),
        }
        for kind in sorted(control)
    }


def inspection_counts(classes: Iterable[dict[str, Any]], sites: Iterable[dict[str, Any]]) -> list[tuple[Place, Counts]]:
    """From the inspections' sums per site and class, and per site: luminaires in service of
    road and of landscape lighting, and controllers online."""
    out: list[tuple[Place, Counts]] = []
    for row in classes:
        figure = LANDSCAPE_CONDITION if row["lighting_class"] == "landscape" else ROAD_CONDITION
        luminaires = float(row["luminaires"] or 0)
        place = Place(row["site_id"], row["district_id"], row["region"])
        out.append((place, {figure.key: (luminaires - float(row["faulty"] or 0), luminaires)}))
    for row in sites:
        place = Place(row["site_id"], row["district_id"], row["region"])
        out.append((place, {ONLINE.key: (float(row["online"] or 0), float(row["controllers"] or 0))}))
    return out


def case_counts(cases: Sequence[CaseCounts], places: Places) -> list[tuple[Place, Counts]]:
    out: list[tuple[Place, Counts]] = []
    for case in cases:
        counted = float(case.due - case.deferred)
        place = Place(case.site_id, case.district_id, places.region_of(case.district_id))
        out.append(
            (
                place,
                {
                    HANDLED_ON_TIME.key: (float(case.handled_on_time), counted),
                    CLOSED_ON_TIME.key: (float(case.closed_on_time), counted),
                    CLOSED.key: (float(case.closed), counted),
                },
            )
        )
    return out
