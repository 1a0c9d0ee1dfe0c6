"""The city's view of its districts, from what they publish: each district's inventory (NBIRTH),
each controller's config and state (DBIRTH, DDATA), whether the district is online (NBIRTH,
NDEATH). Pure data: the primary host (:mod:`lightctl.federation.host`) feeds it in the order the
messages came.

The city's inventory is the union of the districts' births, built as a
:class:`~lightctl.inventory.index.Inventory` (so that the city selects channels exactly as a
district does) when first needed after a birth. A district that goes offline keeps its last
known inventory, so that a selector naming it still resolves and it is reported offline.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lightctl.federation import vocabulary
from lightctl.federation.sparkplug import Metric, Payload, SparkplugError
from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.model.desired import Desired, Released
from lightctl.model.installation import ControllerConfig, District, Site
from lightctl.model.schedule import ScheduleConfig
from lightctl.model.values import ChannelReading, ControllerReading, FaultKind

log = logging.getLogger("lightctl.federation")

_FAULT_KINDS = {kind.value: kind for kind in FaultKind}


@dataclass(slots=True)
class ChannelView:
    on: bool | None = None
    level: float | None = None
    power_w: float | None = None
    released: bool | None = None
    held_by: str | None = None
    desired: Desired | None = None

    def reading(self) -> ChannelReading:
        return ChannelReading(on=self.on, level=self.level, power_w=self.power_w, held_by=self.held_by, released=self.released)


@dataclass(eq=False, slots=True)
class ControllerView:
    id: str
    district: str
    site: str
    config: ControllerConfig
    link: str = "unknown"
    link_error: str | None = None
    link_since: float = field(default_factory=time.time)
    power_w: float | None = None
    energy_kwh: float | None = None
    faults: tuple[str, ...] = ()
    read_at: float | None = None
    pending: int = 0
    channels: dict[str, ChannelView] = field(default_factory=dict)

    def apply(self, metrics: Iterable[Metric]) -> None:
        for metric in metrics:
            if metric.historical:
                continue
            value = metric.value
            split = vocabulary.split_channel_metric(metric.name)
            if split is not None:
                self._apply_channel(*split, value)
            elif metric.name == vocabulary.LINK and isinstance(value, str):
                self.link = value
            elif metric.name == vocabulary.LINK_ERROR:
                self.link_error = value if isinstance(value, str) else None
            elif metric.name == vocabulary.LINK_SINCE and isinstance(value, int):
                self.link_since = value / 1000
            elif metric.name == vocabulary.POWER:
                self.power_w = _number(value)
            elif metric.name == vocabulary.ENERGY:
                self.energy_kwh = _number(value)
            elif metric.name == vocabulary.FAULTS:
                self.faults = tuple(value.split(",")) if isinstance(value, str) and value else ()
            elif metric.name == vocabulary.READ_AT and isinstance(value, int):
                self.read_at = value / 1000
            elif metric.name == vocabulary.PENDING and isinstance(value, int):
                self.pending = value

    def _apply_channel(self, channel: str, what: str, value: Any) -> None:
        view = self.channels.setdefault(channel, ChannelView())
        if what == vocabulary.ON:
            view.on = value if isinstance(value, bool) else None
        elif what == vocabulary.LEVEL:
            view.level = _number(value)
        elif what == vocabulary.CHANNEL_POWER:
            view.power_w = _number(value)
        elif what == vocabulary.RELEASED_NAME:
            view.released = value if isinstance(value, bool) else None
        elif what == vocabulary.HELD_BY:
            view.held_by = value if isinstance(value, str) else None
        elif what == vocabulary.DESIRED:
            try:
                view.desired = vocabulary.parse_desired(value if isinstance(value, str) else None)
            except ValueError as exc:
                log.warning("controller %s: %s", self.id, exc)

    # -- what lightctl.services.metrics asks of a controller (its Observed protocol) -----------

    @property
    def desired(self) -> Mapping[str, Desired]:
        return {ch: v.desired for ch, v in self.channels.items() if v.desired is not None}

    @property
    def reading(self) -> ControllerReading | None:
        if self.read_at is None and all(v.on is None for v in self.channels.values()):
            return None
        faults = frozenset(_FAULT_KINDS[f] for f in self.faults if f in _FAULT_KINDS)
        return ControllerReading(
            self.read_at or 0.0, {ch: v.reading() for ch, v in self.channels.items()}, self.power_w, self.energy_kwh, faults
        )

    @property
    def handed_back(self) -> int:
        """Channels handed back to their owners, and confirmed so."""
        return sum(1 for v in self.channels.values() if isinstance(v.desired, Released) and v.released)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(eq=False, slots=True)
class DistrictView:
    id: str
    online: bool = False
    since: float = field(default_factory=time.time)
    bd_seq: int | None = None
    seq: int | None = None
    stale: bool = True
    """Waiting for a birth: what it sends until then cannot be placed."""
    births: int = 0
    district: District | None = None
    tags: tuple[str, ...] = ()
    scenes: tuple[dict[str, Any], ...] = ()
    shows: tuple[dict[str, Any], ...] = ()
    crews: tuple[dict[str, Any], ...] = ()
    """The district's maintenance crews (its work orders are dispatched to them)."""
    expected: tuple[str, ...] = ()
    acknowledged: int = 0
    """The district's own mark of what the city acknowledged, as its last birth said."""
    overrides: tuple[dict[str, Any], ...] = ()
    controllers: dict[str, ControllerView] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Online, and every controller of its birth described."""
        return self.online and not self.stale and self.district is not None and all(c in self.controllers for c in self.expected)

    def scene_ids(self) -> set[str]:
        return {str(s["id"]) for s in self.scenes}

    def show_ids(self) -> set[str]:
        return {str(s["id"]) for s in self.shows}


class Mirror:
    def __init__(self, expected: Iterable[str], base: Config) -> None:
        self.base = base
        """The city's own config: its installation's name, zone and energy factors."""
        self.districts: dict[str, DistrictView] = {d: DistrictView(d) for d in expected}
        self.controllers: dict[str, ControllerView] = {}
        self._inventory: Inventory | None = None
        self._inventories: dict[str, Inventory] = {}
        self._configs: dict[str, tuple[str, str, ControllerConfig]] = {}

    def district(self, district_id: str) -> DistrictView:
        view = self.districts.get(district_id)
        if view is None:
            view = self.districts[district_id] = DistrictView(district_id)
        return view

    def _changed(self, district_id: str) -> None:
        self._inventory = None
        self._inventories.pop(district_id, None)

    # -- messages ----------------------------------------------------------------------------

    def node_birth(self, district_id: str, payload: Payload) -> DistrictView:
        metrics = payload.by_name()
        inventory = _json(metrics, vocabulary.INVENTORY)
        try:
            district = District.model_validate(inventory["district"])
            expected = tuple(str(c) for c in inventory["controllers"])
        except (KeyError, TypeError, ValidationError) as exc:
            raise SparkplugError(f"district {district_id}: its NBIRTH's inventory is not lightctl's: {exc}") from None
        if district.id != district_id:
            raise SparkplugError(f"node {district_id!r} was born as district {district.id!r}: refused")
        view = self.district(district_id)
        for cid in view.controllers:
            self.controllers.pop(cid, None)
        view.controllers = {}
        view.district, view.expected = district, expected
        view.tags = tuple(str(t) for t in inventory.get("tags", ()))
        view.scenes = tuple(inventory.get("scenes", ()))
        view.shows = tuple(inventory.get("shows", ()))
        view.crews = tuple(c for c in inventory.get("crews", ()) if isinstance(c, dict))
        view.overrides = tuple(_json(metrics, vocabulary.OVERRIDES, []))
        acknowledged = metrics.get(vocabulary.ACKNOWLEDGED)
        view.acknowledged = acknowledged.value if acknowledged is not None and isinstance(acknowledged.value, int) else 0
        bd_seq = metrics.get(vocabulary.BD_SEQ)
        view.bd_seq = bd_seq.value if bd_seq is not None and isinstance(bd_seq.value, int) else None
        view.seq, view.stale, view.online, view.since = payload.seq, False, True, time.time()
        view.births += 1
        self._changed(district_id)
        return view

    def device_birth(self, district_id: str, device: str, payload: Payload) -> ControllerView:
        view = self.districts[district_id]
        site, config = self._controller_config(district_id, device, payload.by_name())
        if config.id != device:
            raise SparkplugError(f"district {district_id}: DBIRTH of {device} describes controller {config.id!r}")
        owner = self.controllers.get(device)
        if owner is not None and owner.district != district_id:
            raise SparkplugError(f"district {district_id} claims controller {device}, born in district {owner.district}: refused")
        controller = ControllerView(device, district_id, site, config)
        controller.apply(payload.metrics)
        view.controllers[device] = controller
        self.controllers[device] = controller
        self._changed(district_id)
        return controller

    def _controller_config(self, district_id: str, device: str, metrics: Mapping[str, Metric]) -> tuple[str, ControllerConfig]:
        """A DBIRTH's controller config (validated once per text: a rebirth says the same again)."""
        metric = metrics.get(vocabulary.CONFIG)
        text = metric.value if metric is not None and isinstance(metric.value, str) else ""
        cached = self._configs.get(device)
        if cached is not None and cached[0] == text:
            return cached[1], cached[2]
        data = _json(metrics, vocabulary.CONFIG)
        try:
            site = str(data.pop("site"))
            config = ControllerConfig.model_validate(data)
        except (KeyError, TypeError, AttributeError, ValidationError) as exc:
            raise SparkplugError(f"district {district_id}: DBIRTH of {device}: its config is not lightctl's: {exc}") from None
        self._configs[device] = (text, site, config)
        return site, config

    def device_data(self, district_id: str, device: str, payload: Payload) -> ControllerView | None:
        controller = self.districts[district_id].controllers.get(device)
        if controller is not None:
            controller.apply(payload.metrics)
        return controller

    def node_data(self, district_id: str, payload: Payload) -> None:
        """The state a node's NDATA carries (its layers in force); its events are the host's."""
        overrides = payload.by_name().get(vocabulary.OVERRIDES)
        if overrides is not None and isinstance(overrides.value, str):
            self.districts[district_id].overrides = tuple(json.loads(overrides.value))

    def node_death(self, district_id: str, bd_seq: int | None) -> bool:
        """A district's NDEATH; False for the death of a session older than its last birth."""
        view = self.district(district_id)
        if bd_seq is not None and view.bd_seq is not None and bd_seq != view.bd_seq:
            return False
        self.offline(view)
        return True

    def offline(self, view: DistrictView) -> None:
        if view.online:
            view.since = time.time()
        view.online, view.stale = False, True

    def host_disconnected(self) -> None:
        """The city lost the broker: it knows nothing of any district until each is born again."""
        for view in self.districts.values():
            self.offline(view)

    # -- the inventories ---------------------------------------------------------------------

    def inventory(self) -> Inventory:
        """Every controller any district was born with, as one installation."""
        if self._inventory is None:
            self._inventory = Inventory(self._config(list(self.districts.values())))
        return self._inventory

    def district_inventory(self, district_id: str) -> Inventory:
        found = self._inventories.get(district_id)
        if found is None:
            found = self._inventories[district_id] = Inventory(self._config([self.districts[district_id]]))
        return found

    def _config(self, views: list[DistrictView]) -> Config:
        districts = []
        tags: set[str] = set()
        for view in views:
            if view.district is None:
                continue
            tags.update(view.tags)
            by_site: dict[str, list[ControllerConfig]] = {}
            for cid in view.expected:
                controller = view.controllers.get(cid)
                if controller is not None:
                    by_site.setdefault(controller.site, []).append(controller.config)
            sites: list[Site] = [s.model_copy(update={"controllers": by_site.get(s.id, [])}) for s in view.district.sites]
            districts.append(view.district.model_copy(update={"sites": sites}))
        return Config.model_construct(
            installation=self.base.installation, daemon=self.base.daemon, tags=sorted(tags), districts=districts,
            scenes=[], shows=[], schedule=ScheduleConfig(), federation=None,
        )


def _json(metrics: Mapping[str, Metric], name: str, default: Any = None) -> Any:
    metric = metrics.get(name)
    if metric is None or not isinstance(metric.value, str):
        if default is not None:
            return default
        raise SparkplugError(f"metric {name!r} is missing")
    try:
        return json.loads(metric.value)
    except ValueError as exc:
        raise SparkplugError(f"metric {name!r} is not JSON: {exc}") from None
