"""The installation as an index: controllers, channels with their luminaires, and selectors.

Built once from a validated Config and never mutated; selector results are cached.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
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


class SingleChannels(Mapping[str, frozenset[ChannelKey]]):
    """The ``channel:`` selector's table, ``"controller/channel"`` -> that one channel, worked out
    when asked: as a stored table it held a set per channel (9 MB at 5,000 cabinets)."""

    def __init__(self, channels: Mapping[ChannelKey, object]) -> None:
        self.channels = channels

    def __getitem__(self, name: str) -> frozenset[ChannelKey]:
        at = name.find("/")
        while at >= 0:  # an id may itself hold a '/': try every split
            key = (name[:at], name[at + 1:])
            if key in self.channels:
                return frozenset((key,))
            at = name.find("/", at + 1)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (f"{controller}/{channel}" for controller, channel in self.channels)

    def __len__(self) -> int:
        return len(self.channels)


class Inventory:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.controllers: dict[str, ControllerInfo] = {}
        self.channels: dict[ChannelKey, ChannelInfo] = {}
        self.legacy: list[LegacyInfo] = []
        self.sites: dict[str, Site] = {}
        self.districts: dict[str, District] = {}
        index: dict[str, defaultdict[str, set[ChannelKey]]] = {
            kind: defaultdict(set) for kind in selectors.SELECTOR_KINDS if kind != "channel"
        }
        tag_sets: dict[frozenset[str], frozenset[str]] = {}
        for district in config.districts:
            self.districts[district.id] = district
            for site in district.sites:
                self.sites[site.id] = site
                for ctrl in site.controllers:
                    self.controllers[ctrl.id] = ControllerInfo(ctrl, site, district)
                    for ch in ctrl.channels:
                        key = (ctrl.id, ch.id)
                        tags = frozenset([*district.tags, *site.tags, *ctrl.tags, *ch.tags])
                        tags = tag_sets.setdefault(tags, tags)
                        self.channels[key] = ChannelInfo(key, ch, ctrl, site, district, tags)
                        index["district"][district.id].add(key)
                        index["site"][site.id].add(key)
                        for tag in tags:
                            index["tag"][tag].add(key)
                        for batch in ch.luminaires:
                            index["kind"][batch.kind].add(key)
                        index["controller"][ctrl.id].add(key)
                        index["protocol"][ctrl.protocol].add(key)
                for circuit in site.legacy:
                    self.legacy.append(LegacyInfo(circuit, site, district))
        self.all_keys: frozenset[ChannelKey] = frozenset(self.channels)
        self._index = _frozen_index(index, config, SingleChannels(self.channels))
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


def _frozen_index(
    index: Mapping[str, Mapping[str, set[ChannelKey]]], config: Config, channels: SingleChannels
) -> dict[str, Mapping[str, frozenset[ChannelKey]]]:
    """The selector tables, every distinct set of channels stored once: a district's or a site's
    three names share one set, and so do tags, kinds and protocols that name the same channels
    (at 5,000 cabinets the copies came to about 20 MB)."""
    distinct: dict[frozenset[ChannelKey], frozenset[ChannelKey]] = {}

    def once(members: Iterable[ChannelKey]) -> frozenset[ChannelKey]:
        frozen = frozenset(members)
        return distinct.setdefault(frozen, frozen)

    tables: dict[str, dict[str, frozenset[ChannelKey]]] = {
        kind: {value: once(members) for value, members in table.items()} for kind, table in index.items()
    }
    places = {
        "district": [(d.id, (d.name, d.name_en)) for d in config.districts],
        "site": [(s.id, (s.name, s.name_en)) for d in config.districts for s in d.sites],
    }
    for kind, named in places.items():
        table = tables[kind]
        for ident, names in named:
            members = table.get(ident)
            for name in names:
                if members is None or not name or name == ident:
                    continue
                # two places of one name: the name selects both, as it always has
                table[name] = members if name not in table else once(table[name] | members)
    found: dict[str, Mapping[str, frozenset[ChannelKey]]] = dict(tables)
    found["channel"] = channels
    return found
