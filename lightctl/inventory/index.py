"""The installation as an index: controllers, channels with their luminaires, and selectors.

Built once from a validated Config and never mutated; selector results are cached.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from lightctl.inventory import selectors
from lightctl.model.config import Config
from lightctl.model.installation import (
    ChannelConfig,
    ControllerConfig,
    District,
    LegacyCircuit,
    Luminaires,
    Site,
)

ChannelKey = tuple[str, str]
"""(controller id, channel id): a channel's identity across the installation."""


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    key: ChannelKey
    channel: ChannelConfig
    controller: ControllerConfig
    site: Site
    district: District
    tags: frozenset[str]


@dataclass(frozen=True, slots=True)
class LegacyInfo:
    circuit: LegacyCircuit
    site: Site
    district: District


@dataclass(frozen=True, slots=True)
class ControllerInfo:
    controller: ControllerConfig
    site: Site
    district: District


class Inventory:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.controllers: dict[str, ControllerInfo] = {}
        self.channels: dict[ChannelKey, ChannelInfo] = {}
        self.legacy: list[LegacyInfo] = []
        self.sites: dict[str, Site] = {}
        self.districts: dict[str, District] = {}
        index: dict[str, defaultdict[str, set[ChannelKey]]] = {
            kind: defaultdict(set) for kind in selectors.SELECTOR_KINDS
        }
        for district in config.districts:
            self.districts[district.id] = district
            for site in district.sites:
                self.sites[site.id] = site
                for ctrl in site.controllers:
                    self.controllers[ctrl.id] = ControllerInfo(ctrl, site, district)
                    for ch in ctrl.channels:
                        key = (ctrl.id, ch.id)
                        tags = frozenset([*district.tags, *site.tags, *ctrl.tags, *ch.tags])
                        self.channels[key] = ChannelInfo(key, ch, ctrl, site, district, tags)
                        for name in {district.id, district.name, district.name_en}:
                            index["district"][name].add(key)
                        for name in {site.id, site.name, site.name_en}:
                            index["site"][name].add(key)
                        for tag in tags:
                            index["tag"][tag].add(key)
                        for batch in ch.luminaires:
                            index["kind"][batch.kind].add(key)
                        index["controller"][ctrl.id].add(key)
                        index["channel"][f"{ctrl.id}/{ch.id}"].add(key)
                        index["protocol"][ctrl.protocol].add(key)
                for circuit in site.legacy:
                    self.legacy.append(LegacyInfo(circuit, site, district))
        self.all_keys: frozenset[ChannelKey] = frozenset(self.channels)
        self._index = {kind: {v: frozenset(m) for v, m in table.items()} for kind, table in index.items()}
        self._cache: dict[str, frozenset[ChannelKey]] = {}

    def select(self, selector: str) -> frozenset[ChannelKey]:
        """Channels a selector names; raises selectors.SelectorError for unknown names."""
        found = self._cache.get(selector)
        if found is None:
            found = selectors.evaluate(selector, self.all_keys, self._index)
            self._cache[selector] = found
        return found

    def luminaire_batches(self) -> Iterator[tuple[Luminaires, bool, str, str]]:
        """Every batch of luminaires: (batch, remotely controlled?, site id, district id)."""
        for info in self.channels.values():
            for batch in info.channel.luminaires:
                yield batch, True, info.site.id, info.district.id
        for legacy in self.legacy:
            for batch in legacy.circuit.luminaires:
                yield batch, False, legacy.site.id, legacy.district.id
