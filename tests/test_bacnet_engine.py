"""The buildings in the one switch: BACnet towers with the Modbus cabinets, through the engine;
and the BACnet part of config.yaml."""

from __future__ import annotations

from pathlib import Path

from drivers.base import Fault
from drivers.registry import get_plugin
from lightctl.inventory.index import Inventory
from lightctl.model.values import ChannelState
from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import EngineSettings, Status
from lightctl.resolve.loading import load_config
from tests.conftest import build_config, installation_data, modbus_controller
from tests.test_bacnet_support import building

ROOT = Path(__file__).resolve().parent.parent
HALF = ChannelState(True, 50.0)
OFF = ChannelState(False, 0.0)


async def test_one_switch_over_towers_and_cabinets(make_farm) -> None:  # type: ignore[no-untyped-def]
    scene = {"id": "scene", "point": "multi-state-value:1",
             "luminaires": {"count": 24, "kind": "decoration", "led": True, "watts": 60}}
    towers = [building(f"t{i}", address=f"10.98.0.{i + 1}", timeout_s=1.5) for i in range(4)]
    towers[0]["channels"].append(scene)
    towers.append(building("old", profile="bms-legacy", address="10.98.0.9", priority=12, timeout_s=1.5))
    cabinets = [modbus_controller(f"m{i}", i) for i in range(4)]
    data = installation_data([*towers, *cabinets], per_site=5)
    farm, config = await make_farm(data)
    await farm.inject("t3", Fault("offline"))
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=2.0, polling=False))
    await engine.start()
    try:
        for state in (HALF, OFF):
            engine.set_desired(dict.fromkeys(inventory.all_keys, state))
            outcome = await engine.command(inventory.all_keys)
            statuses = {cid: o.status for cid, o in outcome.controllers.items()}
            assert statuses.pop("t3") is Status.FAILED
            assert set(statuses.values()) == {Status.CONFIRMED}, outcome.controllers
            assert outcome.elapsed_s < 2.5
            assert outcome.controllers["t0"].operations == 1  # one WritePropertyMultiple per tower
            assert outcome.controllers["old"].operations == 4  # WriteProperty per output
            reading = engine.reading_of("t0")
            assert reading is not None and reading.channels["scene"].on is state.on
    finally:
        await engine.stop()


def test_config_yaml_buildings() -> None:
    config = load_config(ROOT / "config.yaml")
    towers = {c.id: c for c in config.controllers() if c.protocol == "bacnet"}
    assert {"jbz-t1", "jbz-t2", "jbz-t3", "dzs-t1", "dzs-t2"} <= set(towers)
    assert towers["jbz-t3"].settings.priority == 12 and towers["jbz-t1"].settings.priority == 10
    inventory = Inventory(config)
    assert inventory.select("site:jiangbeizui-towers") and inventory.select("site:弹子石中央商住区 楼宇立面")
    plugin = get_plugin("bacnet")
    for ctrl in towers.values():
        assert plugin.validate_controller(ctrl) == []


def test_config_problems_are_named() -> None:
    bad = building("t", channels=2)
    bad["channels"][1]["point"] = "analog-input:1"  # the profile's power meter
    bad2 = building("u", channels=1, address="10.98.0.2")
    bad2["channels"][0]["point"] = "lighting-output:x"
    bad3 = building("v", channels=1, address="10.98.0.3", priority=6)
    import pytest

    from lightctl.config.problems import ConfigError

    with pytest.raises(ConfigError) as info:
        build_config(installation_data([bad, bad2, bad3]))
    text = str(info.value)
    assert "analog-input cannot be commanded" in text
    assert "not an object reference" in text
    assert "priority 6 is reserved" in text
