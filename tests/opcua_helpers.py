"""Shared set-up for the OPC UA tests: controllers as config.yaml would give them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from drivers.opcua import PLUGIN
from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.sim import OpcUaSimulator
from lightctl.model.installation import ControllerConfig


def bridge_controller(cid: str = "plc-test", *, profile: str = "bridge-plc", **settings: Any) -> ControllerConfig:
    raw: dict[str, Any] = {
        "id": cid,
        "protocol": "opcua",
        "profile": profile,
        "timeout_s": 2.0,
        "poll_s": 1.0,
        "host": "127.0.0.1",
        "port": 4840,
        **settings,
        "channels": [
            {"id": "deck", "point": "deck", "luminaires": {"count": 1200, "kind": "landscape", "led": True, "watts": 18, "colour": "rgb"}},
            {"id": "cables", "point": "cables", "luminaires": {"count": 800, "kind": "landscape", "led": True, "watts": 12, "colour": "rgb"}},
            {"id": "piers", "point": "piers", "luminaires": {"count": 96, "kind": "landscape", "led": True, "watts": 150, "colour": "cct"}},
            {"id": "towers", "point": "towers", "luminaires": {"count": 64, "kind": "landscape", "led": True, "watts": 200}},
        ],
    }
    if "endpoint" in settings:
        raw.pop("host")
        raw.pop("port")
    if profile == "bridge-plc-basic":
        for ch in raw["channels"]:
            ch["luminaires"].pop("colour", None)
    ctrl = ControllerConfig.model_validate(raw)
    return ctrl.model_copy(update={"settings": PLUGIN.settings_model.model_validate(ctrl.settings)})


def with_endpoint(ctrl: ControllerConfig, overrides: Mapping[str, Any]) -> ControllerConfig:
    return ctrl.model_copy(update={"settings": ctrl.settings.model_copy(update=dict(overrides))})


@asynccontextmanager
async def simulated_plc(ctrl: ControllerConfig) -> AsyncIterator[tuple[OpcUaSimulator, ControllerConfig]]:
    """The PLC simulated on a free port, and its controller pointed at it."""
    sim = PLUGIN.create_simulator([ctrl], any_port=True)
    await sim.start()
    try:
        yield sim, with_endpoint(ctrl, sim.endpoints()[ctrl.id])
    finally:
        await sim.stop()


@asynccontextmanager
async def plc_driver(ctrl: ControllerConfig) -> AsyncIterator[OpcUaDriver]:
    driver = PLUGIN.create_driver(ctrl)
    assert isinstance(driver, OpcUaDriver)
    try:
        yield driver
    finally:
        await driver.close()
