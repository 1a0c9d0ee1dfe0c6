"""``scene explain``: the operations a scene compiles to, per controller, without sending any."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from drivers.base import ChannelId, ChannelState
from drivers.registry import get_plugin
from scenes.model import SceneBook


def explain(scenes: SceneBook, scene_id: str, target: str = "*") -> list[dict[str, Any]]:
    """Per controller (sorted by id): its protocol, the channels set, and each planned operation."""
    inventory = scenes.inventory
    states = scenes.compile(scene_id, inventory.select(target))
    batches: dict[str, dict[ChannelId, ChannelState]] = defaultdict(dict)
    for (controller_id, channel_id), state in states.items():
        batches[controller_id][channel_id] = state
    out = []
    for controller_id in sorted(batches):
        controller = inventory.controllers[controller_id].controller
        driver = get_plugin(controller.protocol).create_driver(controller)
        operations = driver.plan(batches[controller_id])
        out.append(
            {
                "controller": controller_id,
                "protocol": controller.protocol,
                "channels": len(batches[controller_id]),
                "operations": [
                    {"kind": op.kind, "target": op.target, "channels": list(op.channels), "detail": op.detail}
                    for op in operations
                ],
            }
        )
    return out
