"""One switch through the engine over DALI lines (both transports) and Modbus cabinets together,
with the simulators in a worker process and DALI bus timing on."""

from __future__ import annotations

from typing import Any

from drivers.base import Fault
from drivers.dali.levels import LEVEL_TOLERANCE
from lightctl.inventory.index import Inventory
from lightctl.model.values import OFF, ChannelState, FaultKind
from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import EngineSettings, Status
from tests.conftest import installation_data, modbus_controller
from tests.test_dali_common import controller_data

ON = ChannelState(True, 100.0)
HALF = ChannelState(True, 50.0)


def _dali(cid: str, gateway: str, lines: int, port: int) -> dict[str, Any]:
    data = controller_data(cid, gateway, lines=lines, gear=64, groups=4, timeout_s=2.0)
    flat = {k: v for k, v in data.items() if k != "settings"} | data["settings"]
    flat["port"] = port  # placeholder, the farm binds free ports
    return flat


async def test_one_switch_over_dali_lines_and_modbus_cabinets(make_farm) -> None:  # type: ignore[no-untyped-def]
    dali = [_dali("dws1", "lunatone-ws", 4, 40001), _dali("dws2", "lunatone-ws", 2, 40002), _dali("dsrv1", "daliserver", 2, 41000)]
    modbus = [modbus_controller(f"m{i}", i) for i in range(4)]
    data = installation_data(dali + modbus, per_site=3)
    farm, config = await make_farm(data)
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=3.0, polling=False))
    await engine.start()
    lines = {c["id"]: len(c["lines"]) for c in dali}
    try:
        for round_no, state in enumerate((ON, OFF, HALF, ON)):
            engine.set_desired(dict.fromkeys(inventory.all_keys, state))
            before = await farm.request_counts()
            outcome = await engine.command(inventory.all_keys)
            after = await farm.request_counts()
            assert outcome.count(Status.CONFIRMED) == len(outcome.controllers) == 7, outcome
            assert outcome.elapsed_s < 2.0  # per-gear frames would need over 2 s per line
            for cid, count in lines.items():
                # the command itself: one broadcast DAPC per line (plus the fade time set-up, once)
                operations = outcome.controllers[cid].operations
                assert operations == count if round_no else count <= operations <= 4 * count
                # on the bus: that, one read-back query per channel (4 groups a line), and at most
                # one convergence pass of the engine's own started by set_desired
                assert after[cid] - before[cid] <= 2 * count * (4 + 4)
                reading = engine.reading_of(cid)
                assert reading is not None
                assert all(abs((r.level or 0) - state.output) <= LEVEL_TOLERANCE for r in reading.channels.values())

        # a lamp failure on one DALI group shows up in the controller's full sweep
        await farm.inject("dsrv1", Fault("lamp_failure", channel="l2g3", value=0.2))
        assert await engine.poll(engine.runtimes["dsrv1"])  # one full poll, no timer
        reading = engine.reading_of("dsrv1")
        assert reading is not None and reading.channels["l2g3"].faults == {FaultKind.LAMP_FAILURE}
    finally:
        await engine.stop()


async def test_one_switch_over_the_shipped_dali_sites_with_their_modbus_cabinets(make_farm) -> None:  # type: ignore[no-untyped-def]
    """config.yaml's embankment and old-street sites (every DALI line there and the Modbus cabinets
    beside them), on simulators, switched as one."""
    import json
    from pathlib import Path

    from ruamel.yaml import YAML

    tree = json.loads(json.dumps(YAML(typ="safe").load(Path("config.yaml").read_text(encoding="utf-8"))))
    wanted = {"changbin-road", "nanbin-road", "sunshine-100"}
    for district in tree["districts"]:
        district["sites"] = [s for s in district["sites"] if s["id"] in wanted]
    tree["districts"] = [d for d in tree["districts"] if d["sites"]]
    for key in ("scenes", "schedule", "shows", "faults"):  # they name sites left out here
        tree.pop(key, None)
    _farm, config = await make_farm(tree)
    inventory = Inventory(config)
    protocols = {c.protocol for c in config.controllers()}
    dali = [c for c in config.controllers() if c.protocol == "dali"]
    assert protocols == {"dali", "modbus"} and sum(len(c.settings.lines) for c in dali) == 28
    engine = Engine(inventory, EngineSettings(deadline_s=3.0, polling=False))
    await engine.start()
    try:
        for state in (ON, OFF, ON):
            engine.set_desired(dict.fromkeys(inventory.all_keys, state))
            outcome = await engine.command(inventory.all_keys)
            assert outcome.count(Status.CONFIRMED) == len(outcome.controllers), [
                (o.controller_id, o.error) for o in outcome.controllers.values() if o.status is not Status.CONFIRMED
            ]
            # measured 0.54-0.59 s; one frame per gear would take over 2 s per line before any
            # read-back. The 1.0 s goal itself is measured by `lightctl bench switch --protocol dali`.
            assert outcome.elapsed_s < 2.0
    finally:
        await engine.stop()


async def test_engine_polling_dali_with_the_background_sweep() -> None:
    """Polls come from the driver's sweep; a switch between them is neither delayed by them nor
    undone by a pass that began before it (no spurious re-apply)."""
    import asyncio

    from drivers.dali.sim import DaliSimulatorHost
    from lightctl.resolve.loading import config_from_data

    flat = _dali("poll1", "lunatone-ws", 2, 40010)
    flat["poll_s"] = 0.4
    flat["sweep_budget"] = 8
    config = config_from_data(installation_data([flat]))
    host = DaliSimulatorHost(list(config.controllers()), any_port=True, timing=True)
    await host.start()
    config = config.with_controller_settings(host.endpoints())
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=2.0, polling=True))
    line = host.gateway("poll1").lines[1]
    await engine.start()
    try:
        await asyncio.sleep(1.0)  # the first poll comes within poll_s
        assert engine.reading_of("poll1") is not None
        for state in (ON, HALF):
            engine.set_desired(dict.fromkeys(inventory.all_keys, state))
            outcome = await engine.command(inventory.all_keys)
            assert outcome.count(Status.CONFIRMED) == 1
            # a sweep query in flight, the broadcast and 4 read-backs per line; the engine may first
            # finish the convergence pass that set_desired started (the same frames again)
            assert outcome.elapsed_s < 2.0
        await asyncio.sleep(0.5)  # set_desired also woke the engine's own convergence pass
        line.record = True
        await asyncio.sleep(1.5)  # several polls and sweep passes
        assert not any(frame.startswith("ArcPower") for frame in line.decoded), line.decoded
        assert not engine.unconfirmed()
        reading = engine.reading_of("poll1")
        assert reading is not None
        assert all(abs((r.level or 0) - 50) <= LEVEL_TOLERANCE for r in reading.channels.values())
    finally:
        await engine.stop()
        await host.stop()
