"""A scene costs what `scene explain` says, counted at the simulators (plus one read-back each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightctl.reconcile.explain import explain
from lightctl.runtime.daemon import Daemon
from tests.conftest import installation_data, modbus_controller


def data() -> dict[str, Any]:
    controllers = [modbus_controller(f"x{i}", i) for i in range(3)]
    controllers.append(modbus_controller("r0", 3, channels=12, profile="cabinet-12ch-relay"))
    d = installation_data(controllers)
    d["scenes"] = [
        {"id": "mixed", "rules": [{"target": "*", "level": 60}, {"target": "channel:x1/c4", "on": False},
                                  {"target": "channel:r0/c5", "on": False}]},
        {"id": "gap", "rules": [{"target": "channel:x2/c1", "level": 30}, {"target": "channel:x2/c8", "level": 30}]},
    ]
    return d


async def test_applied_scenes_cost_what_explain_plans(make_farm: Any, tmp_path: Path) -> None:
    farm, config = await make_farm(data())
    daemon = Daemon(config, database=tmp_path / "ops.db")
    await daemon.start()
    try:
        for scene, target in (("mixed", "*"), ("all-off", "*"), ("gap", "controller:x2"), ("all-on", "controller:r0")):
            plan = {entry["controller"]: len(entry["operations"]) for entry in explain(daemon.scenes, scene, target)}
            before = await farm.request_counts()
            report = await daemon.apply_scene(scene, target, user="test", until=None)
            after = await farm.request_counts()
            assert report.outcome.count("confirmed") == len(plan), report.as_json()
            sent = {cid: after[cid] - before[cid] for cid in plan}
            assert sent == {cid: ops + 1 for cid, ops in plan.items()}, (scene, plan, sent)  # + one read-back
            assert {cid: o.operations for cid, o in report.outcome.controllers.items()} == plan
        # The fewest: levels in one write, contactors in one; all-off writes no levels; a gap splits.
        mixed = {e["controller"]: [op["kind"] for op in e["operations"]] for e in explain(daemon.scenes, "mixed")}
        assert mixed["x0"] == ["write_registers", "write_coils"] and mixed["r0"] == ["write_coils"]
        assert [op["kind"] for e in explain(daemon.scenes, "all-off") for op in e["operations"]] == ["write_coils"] * 4
        gap = explain(daemon.scenes, "gap", "controller:x2")[0]["operations"]
        assert sorted(op["kind"] for op in gap) == ["write_coils"] * 2 + ["write_registers"] * 2
    finally:
        await daemon.stop()
