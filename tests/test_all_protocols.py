"""The shipped installation, every protocol at once: Modbus cabinets, OPC UA bridge PLCs, DALI
gateways and BACnet buildings, switched as one, and a light show across all four in one beat."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from lightctl.runtime.daemon import Daemon
from tests.conftest import ROOT


def shipped_config_data(**daemon: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(YAML(typ="safe").load((ROOT / "config.yaml").read_text(encoding="utf-8"))))
    data["daemon"] = {**data.get("daemon", {}), **daemon}
    data["schedule"] = {}  # the clock is not what these tests are about
    data["shows"] = [
        {
            "id": "four-protocols",
            "target": "!kind:street",
            "duration_s": 3.0,
            "loops": 2,
            "cues": [
                {"at_s": 0, "rules": [{"target": "*", "level": 30}]},
                {"at_s": 1, "rules": [{"target": "*", "level": 90, "colour": "gold"}]},
                {"at_s": 2, "scene": "all-off"},
            ],
        }
    ]
    return data


async def test_one_switch_over_every_protocol_of_the_shipped_config(make_farm: Any, tmp_path: Path) -> None:
    farm, config = await make_farm(shipped_config_data(deadline_s=5.0), processes=2)
    protocols = {c.protocol for c in config.controllers()}
    assert protocols == {"modbus", "opcua", "dali", "bacnet"}
    daemon = Daemon(config, database=tmp_path / "all.db")
    await daemon.start()
    try:
        for scene in ("all-on", "night-normal", "all-off"):
            report = await daemon.apply_scene(scene, "*", user="one switch", until=None)
            not_confirmed = {cid: o.error for cid, o in report.outcome.controllers.items() if o.status != "confirmed"}
            assert not not_confirmed, not_confirmed
            assert len(report.outcome.controllers) == len(list(config.controllers()))
            assert report.outcome.elapsed_s < 5.0

        # A show across the four protocols: every cue reaches every controller, in one beat. The
        # operator's overrides end first (a show leaves out what an operator holds).
        for override in list(daemon.overrides):
            await daemon.clear_override(override.id, user="one switch")
        since = time.monotonic()
        run = await daemon.shows.start("four-protocols", user="导演")
        assert run.task is not None
        await run.task
        assert run.status == "done"
        controllers = run.show.controllers
        assert {daemon.inventory.controllers[c].controller.protocol for c in controllers} == protocols
        statuses = {(r.loop, r.cue, r.controller_id): r.status for r in run.records}
        assert len(statuses) == 2 * 3 * len(controllers) and set(statuses.values()) == {"sent"}
        times = await farm.write_times(since)
        for loop in range(2):
            for cue in range(3):
                beat = run.start_monotonic + loop * 3.0 + cue * 1.0
                for cid in controllers:
                    arrived = [t for t in times[cid] if beat - 0.005 <= t < beat + 1.0]
                    assert arrived, f"{cid} did not receive cue {cue} of loop {loop}"
        # Back to what the layers say (nothing scheduled here: off), confirmed by read-back.
        rows = await daemon.store.read("SELECT confirmed, unconfirmed, failed FROM commands WHERE source='show'")
        assert rows and rows[-1]["confirmed"] == len(controllers) and rows[-1]["failed"] == 0
    finally:
        await daemon.stop()
