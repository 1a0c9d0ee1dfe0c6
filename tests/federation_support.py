"""A federation for tests: a real Mosquitto (TLS, a user per district, the ACL), simulated
controllers, district daemons with their edge node, and the city daemon on PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightctl.federation.city import CityDaemon
from lightctl.federation.district import DistrictNode
from lightctl.federation.mqtt import read_password
from lightctl.model.config import Config
from lightctl.process.mosquitto import Mosquitto
from lightctl.resolve.loading import config_from_data
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.wiring import attach_services
from lightctl.store import Store
from lightctl.store.rollups import RollupModel
from tests.conftest import installation_data, modbus_controller, with_endpoints

GROUP = "lightctl"
CITY = "city"


def federated_data(sizes: dict[str, int], **controller: Any) -> dict[str, Any]:
    """An installation of ``sizes[district]`` Modbus cabinets per district (ids ``<district>-<n>``);
    ``controller``: settings of every cabinet (e.g. ``poll_s``)."""
    controllers, index = {}, 0
    for district, count in sizes.items():
        controllers[district] = [modbus_controller(f"{district}-{n}", index + n, channels=4, **controller) for n in range(count)]
        index += count
    data = installation_data([c for cs in controllers.values() for c in cs], per_site=100)
    site = data["districts"][0]["sites"][0]
    names = {"d1": ("渝中", "Yuzhong"), "d2": ("江北", "Jiangbei"), "d3": ("南岸", "Nan'an"), "d4": ("沙坪坝", "Shapingba")}
    data["districts"] = [
        {"id": d, "name": names[d][0], "name_en": names[d][1], "tags": ["bridge"] if d == "d2" else [],
         "sites": [{**copy.deepcopy(site), "id": f"{d}-site", "name": f"{names[d][0]}站点", "name_en": f"{d} site",
                    "tags": ["embankment"], "controllers": controllers[d]}]}
        for d in sizes
    ]
    return data


EXTRA_SCENES = {"d1": [{"id": "d1-only", "rules": [{"target": "*", "level": 30}]}]}
"""A scene only district d1 has (the others refuse it)."""


def district_config(data: dict[str, Any], district: str, broker: Mosquitto, **federation: Any) -> Config:
    own = copy.deepcopy(data)
    own["districts"] = [d for d in own["districts"] if d["id"] == district]
    if "faults" in own:  # each district's crews, working in it only (as lightctl.resolve.split does)
        crews = own["faults"].get("crews", [])
        own["faults"]["crews"] = [{**c, "districts": [district]} for c in crews if district in c["districts"]]
    own["scenes"] = [*own.get("scenes", []), *EXTRA_SCENES.get(district, [])]
    own["federation"] = {"role": "district", "group": GROUP, "node": district, "host": CITY,
                         "broker": broker.settings(district).model_dump(mode="json"), **federation}
    return config_from_data(own, source=f"<{district}>")


def city_config(data: dict[str, Any], broker: Mosquitto, districts: list[str], **federation: Any) -> Config:
    city = {"installation": copy.deepcopy(data["installation"]), "daemon": {"deadline_s": 2.0},
            "federation": {"role": "city", "group": GROUP, "host": CITY, "districts": districts,
                           "broker": broker.settings(CITY).model_dump(mode="json"), "command_timeout_s": 15, **federation}}
    return config_from_data(city, source="<city>")


async def start_district(config: Config, database: Path, **store: Any) -> Daemon:
    assert config.federation is not None
    store.setdefault("rollups", RollupModel.from_config(config))  # energy rolled up, as a daemon's own store does
    daemon = attach_services(Daemon(config, store=Store(database, **store)))  # as lightctl run does
    daemon.services.append(DistrictNode(daemon, config.federation, password=read_password(config.federation.broker)))
    await daemon.start()
    return daemon


def node_of(daemon: Daemon) -> DistrictNode:
    return next(s for s in daemon.services if isinstance(s, DistrictNode))


@dataclass
class Federation:
    broker: Mosquitto
    data: dict[str, Any]
    city: CityDaemon
    districts: dict[str, Daemon]
    work: Path
    farm: Any
    stopped: list[str] = field(default_factory=list)

    async def restart_district(self, district: str, *, store: dict[str, Any] | None = None, **federation: Any) -> Daemon:
        self.districts[district] = await start_district(
            district_config(self.data, district, self.broker, **federation), self.work / f"{district}.db", **(store or {})
        )
        return self.districts[district]

    async def reborn(self, district: str, *, store: dict[str, Any] | None = None, **federation: Any) -> Daemon:
        """Stop a district's daemon, see the city know it offline, start it again and see it born."""
        births = self.city.mirror.districts[district].births
        await self.districts[district].stop()
        await eventually(lambda: not self.city.mirror.districts[district].online, what=f"{district} offline at the city")
        daemon = await self.restart_district(district, store=store, **federation)
        view = self.city.mirror.districts[district]
        await eventually(lambda: view.births > births and view.complete, what=f"{district} born again")
        return daemon

    async def stop(self) -> None:
        for daemon in self.districts.values():
            await daemon.stop()
        await self.city.stop()


async def eventually(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout:.0f} s")
        await asyncio.sleep(0.05)


def all_complete(city: CityDaemon, districts: list[str]) -> bool:
    return all(city.mirror.districts[d].complete for d in districts)


async def start_federation(
    make_farm: Any, work: Path, broker: Mosquitto, city_database: str, sizes: dict[str, int],
    extra: dict[str, Any] | None = None, controller: dict[str, Any] | None = None, **federation: Any,
) -> Federation:
    """``extra``: config sections added to the installation's (e.g. ``faults``); ``controller``:
    settings of every cabinet."""
    data = {**federated_data(sizes, **(controller or {})), **(extra or {})}
    farm, _ = await make_farm(data)
    data = with_endpoints(data, farm.endpoints)
    city = CityDaemon(city_config(data, broker, list(sizes)), database=city_database,
                      password=read_password(broker.settings(CITY)))
    await city.start()
    districts = {}
    for district in sizes:
        districts[district] = await start_district(
            district_config(data, district, broker, **federation), work / f"{district}.db"
        )
    fed = Federation(broker, data, city, districts, work, farm)
    await eventually(lambda: all_complete(city, list(sizes)), what="every district born at the city")
    return fed
