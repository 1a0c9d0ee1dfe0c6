"""The figures now, for ``/api/v1/metrics`` and the status page: the inventory's shares, the
lighting-on rate as an inspection taken this moment would find it, and power and meter counters
as last read. Each figure is computed where the reports compute it (``rates``, ``lighting_on``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightctl.inventory.index import Inventory
from lightctl.model.installation import EnergyFactors
from lightctl.model.times import now_ms
from lightctl.services.reports.lighting_on import ControllerNow, InspectionSettings, inspect
from lightctl.services.reports.rates import kind_shares
from lightctl.services.reports.table import share


def live_metrics(
    inventory: Inventory, observed: Mapping[str, ControllerNow], factors: EnergyFactors, settings: InspectionSettings
) -> dict[str, Any]:
    power = 0.0
    energy = 0.0
    reporting = 0
    for now in observed.values():
        reading = now.reading
        if reading is None:
            continue
        if reading.power_w is not None:
            power += reading.power_w
            reporting += 1
        if reading.energy_kwh is not None:
            energy += reading.energy_kwh
    inspection = inspect(inventory, observed, settings, at_ms=now_ms(), instant="now", source="live")
    should = sum(row.should_be_lit for row in inspection.classes)
    lit = sum(row.lit for row in inspection.classes)
    unseen = sum(row.not_reported for row in inspection.classes)
    return {
        "inventory": kind_shares(inventory),
        "lighting_on": {
            "should_be_lit": should,
            "lit": round(lit, 1),
            "not_reported": unseen,
            "lighting_on_rate": share(lit, should - unseen),
        },
        "power_kw": round(power / 1000.0, 3),
        "controllers_reporting_power": reporting,
        "energy_counters_kwh": round(energy, 3),
        "energy_counters_coal_kgce": round(energy * factors.coal_kgce_per_kwh, 3),
        "energy_counters_co2_kg": round(energy * factors.co2_kg_per_kwh, 3),
    }
