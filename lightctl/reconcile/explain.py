"""``scene explain``: the operations a scene compiles to, per controller, without sending any."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from drivers.registry import get_plugin
from lightctl.model.values import ChannelId, ChannelState
from scenes.model import SceneBook


def explain(scenes: SceneBook, scene_id: str, target: str = "*") -> list[dict[str, Any]]:
    """Per controller (sorted by id): its protocol, the channels set, and each planned operation."""
    inventory = scenes.inventory
    states = scenes.compile(scene_id, inventory.select(target))
    batches: dict[str, dict[ChannelId, ChannelState]] = defaultdict(dict)
    released: dict[str, list[ChannelId]] = defaultdict(list)
    for (controller_id, channel_id), state in states.items():
        if isinstance(state, ChannelState):
            batches[controller_id][channel_id] = state
        else:
            released[controller_id].append(channel_id)
    out = []
    for controller_id in sorted(batches.keys() | released.keys()):
        controller = inventory.controllers[controller_id].controller
        driver = get_plugin(controller.protocol).create_driver(controller)
        operations = [
            {"kind": op.kind, "target": op.target, "channels": list(op.channels), "detail": op.detail}
            for op in (driver.plan(batches[controller_id]) if controller_id in batches else ())
        ]
        if controller_id in released:
            channels = sorted(released[controller_id])
            detail = "the centre's command withdrawn" if driver.controller.releases else "refused: no owner to hand back to"
            operations.append({"kind": "hand back", "target": ", ".join(channels), "channels": channels, "detail": detail})
        out.append(
            {
                "controller": controller_id,
                "protocol": controller.protocol,
                "channels": len(batches[controller_id]) + len(released[controller_id]),
                "operations": operations,
            }
        )
    return out
