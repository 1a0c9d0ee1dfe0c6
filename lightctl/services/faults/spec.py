"""What the fault rules need to know of each controller, worked out once from the inventory and
the ``faults:`` section (limits resolved per site), so that a reading costs no lookups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lightctl.inventory.index import Inventory
from lightctl.model.faults import FaultsConfig, Importance


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    id: str
    name: str
    rated_w: float
    """Count x rated watts of every luminaire on it."""
    luminaires: int
    lighting: str
    """street, landscape, decoration, or mixed."""
    led: bool
    output_key: str
    """The measurement that gives its actual output, where the device reports one."""
    lamp_failures_key: str
    gear_failures_key: str
    gear_missing_key: str


@dataclass(frozen=True, slots=True)
class ControllerSpec:
    id: str
    name: str
    protocol: str
    poll_s: float
    site_id: str
    site_name: str
    district_id: str
    district_name: str
    lat: float
    lon: float
    importance: Importance
    channels: Mapping[str, ChannelSpec]
    over_v: float
    under_v: float
    dead_v: float
    over_a: float
    leakage_ma: float
    lamp_ratio: float
    lamp_readings: int
    off_w: float
    off_ratio: float
    off_readings: int
    deadband_v: float

    @property
    def luminaires(self) -> int:
        return sum(ch.luminaires for ch in self.channels.values())

    @property
    def lighting(self) -> str:
        kinds = {ch.lighting for ch in self.channels.values()}
        return kinds.pop() if len(kinds) == 1 else "mixed"


def compile_specs(inventory: Inventory, config: FaultsConfig) -> dict[str, ControllerSpec]:
    limits = config.thresholds
    specs: dict[str, ControllerSpec] = {}
    for cid, info in inventory.controllers.items():
        site = config.site(info.site.id)
        channels = {}
        for ch in info.controller.channels:
            kinds = {batch.kind for batch in ch.luminaires}
            channels[ch.id] = ChannelSpec(
                id=ch.id,
                name=ch.name or ch.id,
                rated_w=ch.rated_w,
                luminaires=ch.luminaire_count,
                lighting=kinds.pop() if len(kinds) == 1 else "mixed",
                led=all(batch.led for batch in ch.luminaires),
                output_key=f"output_{ch.id}_pct",
                lamp_failures_key=f"{ch.id}.lamp_failures",
                gear_failures_key=f"{ch.id}.gear_failures",
                gear_missing_key=f"{ch.id}.gear_missing",
            )
        specs[cid] = ControllerSpec(
            id=cid,
            name=info.controller.name or cid,
            protocol=info.controller.protocol,
            poll_s=info.controller.poll_s,
            site_id=info.site.id,
            site_name=info.site.name,
            district_id=info.district.id,
            district_name=info.district.name,
            lat=info.site.location.lat,
            lon=info.site.location.lon,
            importance=site.importance if site is not None else "normal",
            channels=channels,
            over_v=site.over_voltage_v if site is not None and site.over_voltage_v is not None else limits.over_voltage_v,
            under_v=site.under_voltage_v if site is not None and site.under_voltage_v is not None else limits.under_voltage_v,
            dead_v=limits.dead_phase_v,
            over_a=site.over_current_a if site is not None and site.over_current_a is not None else limits.over_current_a,
            leakage_ma=limits.leakage_ma,
            lamp_ratio=limits.lamp_power_ratio,
            lamp_readings=limits.lamp_readings,
            off_w=limits.off_power_w,
            off_ratio=limits.off_power_ratio,
            off_readings=limits.off_readings,
            deadband_v=limits.voltage_deadband_v,
        )
    return specs
