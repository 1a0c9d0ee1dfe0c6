"""One switch through the engine over DALI lines (both transports) and Modbus cabinets together,
with the simulators in a worker process and DALI bus timing on."""

from __future__ import annotations

from typing import Any

from drivers.base import OFF, ChannelState, Fault, FaultKind
from drivers.dali.levels import LEVEL_TOLERANCE
from lightctl.engine import Engine, EngineSettings, Status
from lightctl.inventory import Inventory
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
            assert outcome.elapsed_s < 1.0
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
    tree["scenes"] = []
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
            assert outcome.elapsed_s < 1.0  # measured 0.54-0.59 s
    finally:
        await engine.stop()
