"""The figures the action plan asks for (DOMAIN.md, 'Metrics and how they are computed').

* intelligent-control rate: luminaires on channels the central system switches remotely ÷ all
  luminaires of that kind in the inventory (legacy time-clock circuits included);
* LED share: LED luminaires ÷ all luminaires of that kind;
* lighting-on rate: luminaires lit ÷ luminaires that should be lit now; a channel's lit share is
  its measured power ÷ the power its lamps should draw at the commanded level (capped at 1), or
  the contactor state where the device measures no power; channels handed back to their owners
  are not the centre's to light, and count in neither;
* power now, energy counters, and their standard-coal and CO2 equivalents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

from lightctl.inventory.index import Inventory
from lightctl.model.desired import Desired
from lightctl.model.installation import EnergyFactors
from lightctl.model.values import ChannelId, ChannelState, ControllerReading


class Observed(Protocol):
    """What the engine holds of one controller: what it wants of each channel, what it last read."""

    @property
    def desired(self) -> Mapping[ChannelId, Desired]: ...

    @property
    def reading(self) -> ControllerReading | None: ...


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def inventory_rates(inventory: Inventory) -> dict[str, Any]:
    total: defaultdict[str, int] = defaultdict(int)
    controlled: defaultdict[str, int] = defaultdict(int)
    led: defaultdict[str, int] = defaultdict(int)
    for batch, remote, _site, _district in inventory.luminaire_batches():
        for kind in (batch.kind, "all"):
            total[kind] += batch.count
            controlled[kind] += batch.count if remote else 0
            led[kind] += batch.count if batch.led else 0
    return {
        kind: {
            "luminaires": total[kind],
            "remotely_controlled": controlled[kind],
            "intelligent_control_rate": _rate(controlled[kind], total[kind]),
            "led": led[kind],
            "led_share": _rate(led[kind], total[kind]),
        }
        for kind in sorted(total)
    }


def lighting_on(inventory: Inventory, observed: Mapping[str, Observed]) -> dict[str, Any]:
    should = 0.0
    lit = 0.0
    unknown = 0
    for key, info in inventory.channels.items():
        rt = observed[key[0]]
        want = rt.desired.get(key[1])
        if not isinstance(want, ChannelState) or not want.on:
            continue
        count = info.channel.luminaire_count
        should += count
        got = rt.reading.channels.get(key[1]) if rt.reading else None
        if got is None or got.on is None:
            unknown += count
            continue
        if not got.on:
            continue
        expected_w = info.channel.rated_w * (want.level / 100.0)
        if got.power_w is not None and expected_w > 0:
            lit += count * min(1.0, got.power_w / expected_w)
        else:
            lit += count
    return {
        "should_be_lit": int(should),
        "lit": round(lit, 1),
        "not_reported": unknown,
        "lighting_on_rate": _rate(lit, should - unknown),
    }


def installation_metrics(
    inventory: Inventory, observed: Mapping[str, Observed], factors: EnergyFactors
) -> dict[str, Any]:
    power = 0.0
    energy = 0.0
    reporting = 0
    for rt in observed.values():
        if rt.reading is None:
            continue
        if rt.reading.power_w is not None:
            power += rt.reading.power_w
            reporting += 1
        if rt.reading.energy_kwh is not None:
            energy += rt.reading.energy_kwh
    return {
        "inventory": inventory_rates(inventory),
        "lighting_on": lighting_on(inventory, observed),
        "power_kw": round(power / 1000.0, 3),
        "controllers_reporting_power": reporting,
        "energy_counters_kwh": round(energy, 3),
        "energy_counters_coal_kgce": round(energy * factors.coal_kgce_per_kwh, 3),
        "energy_counters_co2_kg": round(energy * factors.co2_kg_per_kwh, 3),
    }
