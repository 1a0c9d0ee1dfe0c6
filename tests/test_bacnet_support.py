"""Shared helpers of the BACnet tests: configs of buildings, simulators on free loopback
addresses, drivers that are always closed. (No tests here; imported by tests/test_bacnet_*.py.)"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from drivers.bacnet.driver import BacnetDriver
from drivers.bacnet.sim import BacnetSimulatorHost
from drivers.registry import get_plugin
from lightctl.model.config import Config
from lightctl.model.installation import ControllerConfig
from tests.conftest import build_config, installation_data

_instances = itertools.count(100_000 + (os.getpid() % 1000) * 1000)


def building(cid: str, *, profile: str = "bms-lighting", channels: int = 4, **extra: Any) -> dict[str, Any]:
    """One building's controller: ``channels`` facade circuits (Lighting Outputs for the
    bms-lighting profile, Binary Outputs for bms-legacy), unique device instance per test."""
    data: dict[str, Any] = {
        "id": cid,
        "name": f"{cid} facade",
        "protocol": "bacnet",
        "profile": profile,
        "device_instance": next(_instances),
        "address": "10.99.0.1",  # replaced by the simulator's loopback address
        "timeout_s": 1.0,
        "poll_s": 3600,
        "channels": [
            {"id": f"f{i}", "point": i,
             "luminaires": {"count": 100 * i, "kind": "landscape", "led": True, "watts": 12}}
            for i in range(1, channels + 1)
        ],
    }
    data.update(extra)
    return data


def make_config(*buildings: dict[str, Any]) -> Config:
    controllers = []
    for n, b in enumerate(buildings):
        b = dict(b)
        b.setdefault("address", f"10.99.0.{n + 1}")
        if b["address"] == "10.99.0.1":
            b["address"] = f"10.99.0.{n + 1}"
        controllers.append(b)
    data = installation_data(controllers)
    return build_config(data)


@asynccontextmanager
async def running(*buildings: dict[str, Any]) -> AsyncIterator[tuple[BacnetSimulatorHost, dict[str, BacnetDriver], Config]]:
    """Simulators for the buildings on fresh loopback addresses, and a connected-on-demand driver
    for each; everything is stopped and closed on exit."""
    config = make_config(*buildings)
    controllers = list(config.controllers())
    host: BacnetSimulatorHost = get_plugin("bacnet").create_simulator(controllers, any_port=True)  # type: ignore[assignment]
    await host.start()
    drivers: dict[str, BacnetDriver] = {}
    try:
        config = config.with_controller_settings(host.endpoints())
        for ctrl in config.controllers():
            drivers[ctrl.id] = BacnetDriver(ctrl)
        yield host, drivers, config
    finally:
        for driver in drivers.values():
            await driver.close()
        await host.stop()


def controller(config: Config, cid: str) -> ControllerConfig:
    return next(c for c in config.controllers() if c.id == cid)


async def eventually(check: Callable[[], bool], timeout_s: float = 3.0, step_s: float = 0.05) -> bool:
    import asyncio
    import time

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if check():
            return True
        await asyncio.sleep(step_s)
    return check()
