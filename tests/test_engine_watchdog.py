"""A device that pushes only on change is asked after three poll intervals of silence: a dead
OPC UA PLC is found without waiting for a command to fail (STYLE: silence may be death)."""

from __future__ import annotations

import asyncio
import time

from opcua_helpers import bridge_controller, simulated_plc

from drivers.base import Fault
from lightctl.inventory.index import Inventory
from lightctl.model.values import LinkState
from lightctl.reconcile.engine import SILENT_POLLS, Engine
from lightctl.reconcile.outcomes import EngineSettings
from lightctl.resolve.loading import config_from_data


def one_plc_config(ctrl_settings: dict[str, object]) -> object:
    ctrl = bridge_controller("plc-w", poll_s=0.5, timeout_s=0.5).model_dump(mode="json")
    ctrl.pop("capabilities", None)
    settings = ctrl.pop("settings")
    ctrl.update({k: v for k, v in settings.items() if v is not None})
    ctrl.update(ctrl_settings)
    return config_from_data({
        "installation": {"name": "测试", "name_en": "Test", "location": {"lat": 29.56, "lon": 106.58}},
        "districts": [{"id": "d1", "name": "渝中", "name_en": "Yuzhong", "sites": [
            {"id": "s1", "name": "桥", "name_en": "Bridge", "location": {"lat": 29.56, "lon": 106.58}, "controllers": [ctrl]}]}],
    }, source="<test>")


async def test_a_silent_pushing_plc_is_polled_and_found_dead() -> None:
    async with simulated_plc(bridge_controller("plc-w", poll_s=0.5, timeout_s=0.5)) as (sim, _ctrl):
        config = one_plc_config(dict(sim.endpoints()["plc-w"]))
        inventory = Inventory(config)  # type: ignore[arg-type]
        engine = Engine(inventory, EngineSettings(deadline_s=2.0, retry_initial_s=0.2, retry_max_s=0.5))
        await engine.start()
        try:
            assert await engine.connect_all() == 1
            rt = engine.runtimes["plc-w"]
            assert rt.pushed, "the OPC UA driver subscribes: no regular polling"
            sim.inject("plc-w", Fault("offline"))
            went = time.monotonic()
            while rt.link.state is not LinkState.OFFLINE:
                assert time.monotonic() - went < 0.5 * SILENT_POLLS + 5.0, "a dead PLC stayed online"
                await asyncio.sleep(0.05)
            sim.clear("plc-w", "offline")
            while rt.link.state is not LinkState.ONLINE:
                assert time.monotonic() - went < 30.0, "the PLC never came back"
                await asyncio.sleep(0.05)
        finally:
            await engine.stop()
