"""The bridges of config.yaml, OPC UA PLCs and Modbus approach cabinets, under one switch
(simulators in this process, on free ports)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from drivers.base import Fault
from drivers.registry import get_plugin
from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelState
from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import EngineSettings, Status
from lightctl.resolve.loading import config_from_data

ROOT = Path(__file__).resolve().parent.parent
BRIDGES = {"朝天门大桥", "千厮门大桥", "东水门大桥", "嘉陵江大桥", "双碑大桥", "高家花园复线桥"}


def bridges_only() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    districts = []
    for district in data["districts"]:
        sites = [s for s in district["sites"] if s["name"] in BRIDGES]
        if sites:
            districts.append({**district, "sites": sites})
    # scenes, schedules and shows name kinds and tags of other sites: only the inventory is kept
    return {"installation": data["installation"], "daemon": data["daemon"], "tags": data["tags"], "districts": districts}


def test_every_bridge_has_its_plc_with_thousands_of_luminaires() -> None:
    config = config_from_data(bridges_only(), source="config.yaml")
    inventory = Inventory(config)
    seen = set()
    for site in inventory.sites.values():
        plcs = [c for c in site.controllers if c.protocol == "opcua"]
        assert plcs, f"{site.name} has no OPC UA PLC"
        assert sum(ch.luminaire_count for c in plcs for ch in c.channels) >= 1500, site.name
        seen.add(site.name)
    assert seen == BRIDGES


@pytest.fixture
async def bridges() -> AsyncIterator[tuple[dict[str, Any], Config]]:
    """The bridges' simulators in this process (Modbus cabinets and OPC UA PLCs, free ports)."""
    config = config_from_data(bridges_only(), source="config.yaml")
    by_protocol: dict[str, list[ControllerConfig]] = defaultdict(list)
    for ctrl in config.controllers():
        by_protocol[ctrl.protocol].append(ctrl)
    hosts: dict[str, Any] = {}
    try:
        for protocol, controllers in by_protocol.items():
            host = get_plugin(protocol).create_simulator(controllers, any_port=True)
            await host.start()
            for ctrl in controllers:
                hosts[ctrl.id] = host
        endpoints = {cid: dict(host.endpoints()[cid]) for cid, host in hosts.items()}
        yield hosts, config.with_controller_settings(endpoints)
    finally:
        for host in {id(h): h for h in hosts.values()}.values():
            await host.stop()


COMMAND_SERVICES = ("Write", "Call", "Read")
"""What a switch sends a PLC (Publish requests are the subscription's own traffic, at its pace)."""


def counts(hosts: dict[str, Any]) -> dict[str, int]:
    return {
        cid: sum(host.service_count(cid, s) for s in COMMAND_SERVICES) if hasattr(host, "service_count") else host.request_count(cid)
        for cid, host in hosts.items()
    }


async def test_one_switch_over_all_bridges_with_modbus_cabinets(bridges) -> None:  # type: ignore[no-untyped-def]
    hosts, config = bridges
    inventory = Inventory(config)
    protocols = {c.controller.protocol for c in inventory.controllers.values()}
    assert protocols == {"opcua", "modbus"}
    plcs = [cid for cid, c in inventory.controllers.items() if c.controller.protocol == "opcua"]
    engine = Engine(inventory, EngineSettings(deadline_s=5.0, polling=False))
    await engine.start()
    try:
        assert await engine.connect_all(timeout_s=20.0) == len(inventory.controllers)
        for state in (ChannelState(True, 100.0), ChannelState(True, 55.0), ChannelState(False, 0.0)):
            before = counts(hosts)
            engine.set_desired(dict.fromkeys(inventory.all_keys, state))
            outcome = await engine.command(inventory.all_keys)
            after = counts(hosts)
            assert all(o.status is Status.CONFIRMED for o in outcome.controllers.values()), [
                (cid, o.status, o.error) for cid, o in outcome.controllers.items() if o.status is not Status.CONFIRMED
            ]
            # each PLC: one Write or one RecallScene call, then one Read
            assert {cid: after[cid] - before[cid] for cid in plcs} == dict.fromkeys(plcs, 2)
            for cid in plcs:
                reading = engine.reading_of(cid)
                assert reading is not None
                assert all(ch.on is state.on for ch in reading.channels.values())
    finally:
        await engine.stop()


async def test_plc_offline_during_the_switch_converges_when_it_returns(bridges) -> None:  # type: ignore[no-untyped-def]
    hosts, config = bridges
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=2.0, retry_initial_s=0.2, retry_max_s=0.5, polling=False))
    await engine.start()
    try:
        await engine.connect_all(timeout_s=20.0)
        hosts["dsm-plc-01"].inject("dsm-plc-01", Fault("offline"))
        await hosts["dsm-plc-01"].settle()
        engine.set_desired(dict.fromkeys(inventory.all_keys, ChannelState(True, 80.0)))
        outcome = await engine.command(inventory.all_keys)
        failed = outcome.controllers["dsm-plc-01"]
        assert failed.status is Status.FAILED and failed.error_kind in {"unreachable", "timeout"}
        assert all(o.status is Status.CONFIRMED for cid, o in outcome.controllers.items() if cid != "dsm-plc-01")
        hosts["dsm-plc-01"].clear("dsm-plc-01", "offline")
        for _ in range(100):  # the engine converges on its own retry schedule
            if not engine.unconfirmed():
                break
            await asyncio.sleep(0.1)
        assert not engine.unconfirmed()
        reading = engine.reading_of("dsm-plc-01")
        assert reading is not None and all(ch.level == 80.0 for ch in reading.channels.values())
    finally:
        await engine.stop()
