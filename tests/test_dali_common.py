"""Helpers shared by the DALI tests: controllers built in code, simulators on free loopback ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from drivers.dali.driver import DaliDriver
from drivers.dali.model import DaliSettings
from drivers.dali.sim import DaliSimulatorHost
from lightctl.model.installation import ControllerConfig

GATEWAYS = ("daliserver", "lunatone-ws")
PROFILE = {"daliserver": "daliserver", "lunatone-ws": "lunatone-dali2-iot4"}


def controller_data(
    cid: str = "gw1", gateway: str = "lunatone-ws", *, lines: int = 2, gear: int = 64, groups: int = 4,
    scenes: dict[int, str] | None = None, cct_line: int | None = None, timeout_s: float = 1.0,
) -> dict[str, Any]:
    """``lines`` lines of ``gear`` gear each, split into ``groups`` equal groups, one channel per group."""
    per_group = gear // groups
    line_list = []
    channels = []
    for line in range(1, lines + 1):
        line_groups = {g: f"{g * per_group}-{(g + 1) * per_group - 1}" for g in range(groups)}
        line_list.append({"line": line, "gear": f"0-{gear - 1}", "groups": line_groups})
        for g in range(groups):
            channels.append(
                {
                    "id": f"l{line}g{g}",
                    "point": f"{line}/g{g}",
                    "luminaires": {
                        "count": per_group * 2, "kind": "landscape", "led": True, "watts": 18.0,
                        "colour": "cct" if line == cct_line else "none",
                    },
                }
            )
    return {
        "id": cid,
        "protocol": "dali",
        "profile": PROFILE[gateway],
        "timeout_s": timeout_s,
        "poll_s": 3600,
        "channels": channels,
        "settings": {"gateway": gateway, "host": "127.0.0.1", "lines": line_list, "scenes": scenes or {}},
    }


def controller(data: dict[str, Any]) -> ControllerConfig:
    data = dict(data)
    data["settings"] = DaliSettings.model_validate(data["settings"])
    return ControllerConfig.model_validate(data)


def with_endpoint(ctrl: ControllerConfig, host: DaliSimulatorHost) -> ControllerConfig:
    patch = dict(host.endpoints()[ctrl.id])
    return ctrl.model_copy(update={"settings": ctrl.settings.model_copy(update=patch)})


@asynccontextmanager
async def running(
    *ctrls: ControllerConfig, timing: bool = False
) -> AsyncIterator[tuple[DaliSimulatorHost, list[DaliDriver]]]:
    host = DaliSimulatorHost(list(ctrls), any_port=True, timing=timing)
    await host.start()
    drivers = [DaliDriver(with_endpoint(c, host)) for c in ctrls]
    try:
        yield host, drivers
    finally:
        for driver in drivers:
            await driver.close()
        await host.stop()


async def no_leftover_tasks() -> None:
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not left, f"tasks left behind: {left}"
