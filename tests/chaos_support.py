"""Shared by the chaos tests: a small installation of all four protocols, its simulators, a proxy
in front of every controller, and the checks every scenario makes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from drivers.dali.bench import controller_data as dali_controller
from lightctl.bench.runner import synthetic_config
from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.model.values import ChannelState
from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import CommandOutcome, EngineSettings, Status
from lightctl.reconcile.reconnect import REAL_TIME, Pace
from lightctl.simulation.chaos import ChaosNet
from lightctl.simulation.farm import SimulatorFarm
from tests.conftest import CHEAP_HASHING

PROTOCOLS = ["modbus", "opcua", "dali", "bacnet"]
TIMEOUT_S = 0.5
"""Every controller's ``timeout_s``: what a request waits for its answer."""
DEADLINE_S = 2.0
"""The engine's deadline per controller and command."""
MARGIN_S = 0.5
"""What a command over faulty controllers may take beyond the deadline (its bookkeeping on a
shared 2-core machine), and no more: nothing waits for a faulty controller past its deadline."""
ON = ChannelState(True, 100.0)
HALF = ChannelState(True, 50.0)
LOW = ChannelState(True, 20.0)


def mixed_data(count: int, *, poll_s: float = 3600.0, **daemon: Any) -> dict[str, Any]:
    """``count`` controllers, round-robin Modbus, OPC UA, DALI, BACnet (ids mb00000, ua00001,
    dali00002, bn00003, ...), with a test's timeouts. The DALI gateways alternate between the
    WebSocket API and daliserver."""
    data = synthetic_config(PROTOCOLS, count)
    dali = 0
    for site in data["districts"][0]["sites"]:
        for n, ctrl in enumerate(site["controllers"]):
            if ctrl["protocol"] == "dali":
                if dali % 2:
                    ctrl = site["controllers"][n] = {**dali_controller(dali), "id": ctrl["id"]}
                dali += 1
            ctrl["timeout_s"] = TIMEOUT_S
            ctrl["poll_s"] = poll_s
    data["daemon"] = {"concurrency": 200, "deadline_s": DEADLINE_S, **daemon}
    data["access"] = {"password_hash": CHEAP_HASHING}
    return data


def by_protocol(config: Config) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {p: [] for p in PROTOCOLS}
    for ctrl in config.controllers():
        out[ctrl.protocol].append(ctrl.id)
    return out


async def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


@dataclass
class Field:
    """Simulators of every protocol behind a proxy each, and an engine driving them."""

    farm: SimulatorFarm
    net: ChaosNet
    config: Config
    inventory: Inventory
    engine: Engine

    @property
    def ids(self) -> list[str]:
        return list(self.inventory.controllers)

    def keys(self, controller_ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
        wanted = set(self.ids if controller_ids is None else controller_ids)
        return [key for key in self.inventory.all_keys if key[0] in wanted]

    async def switch(self, state: ChannelState, controller_ids: Iterable[str] | None = None) -> CommandOutcome:
        keys = self.keys(controller_ids)
        self.engine.set_desired(dict.fromkeys(keys, state))
        return await self.engine.command(keys)


@asynccontextmanager
async def mixed_field(
    make_farm: Any,
    count: int = 8,
    *,
    processes: int = 1,
    settings: EngineSettings | None = None,
    pace: Pace = REAL_TIME,
    poll_s: float = 3600.0,
) -> AsyncIterator[Field]:
    """A started engine over ``count`` mixed controllers, each reached through a proxy of its
    own, sessions open."""
    farm, direct = await make_farm(mixed_data(count, poll_s=poll_s), processes=processes)
    net = ChaosNet()
    try:
        config = await net.front(direct)
        inventory = Inventory(config)
        engine = Engine(
            inventory,
            settings or EngineSettings(deadline_s=DEADLINE_S, retry_initial_s=0.2, retry_max_s=1.0, polling=False),
            pace,
        )
        await engine.start()
        try:
            await engine.connect_all(timeout_s=10.0)
            yield Field(farm, net, config, inventory, engine)
        finally:
            await engine.stop()
    finally:
        await net.close()


def assert_healthy_switched(outcome: CommandOutcome, healthy: Iterable[str], deadline_s: float = DEADLINE_S) -> None:
    """Every healthy controller confirmed, each within its deadline."""
    late = {
        cid: (o.status.value, round(o.elapsed_s, 3), o.error)
        for cid in healthy
        if (o := outcome.controllers[cid]).status is not Status.CONFIRMED or o.elapsed_s >= deadline_s
    }
    assert not late, f"healthy controllers not switched within {deadline_s} s: {late}"


def assert_failures_named(outcome: CommandOutcome, faulty: Iterable[str], kinds: set[str], words: Iterable[str] = ()) -> None:
    """Each faulty controller reported not confirmed, with one of ``kinds`` and a message naming
    the controller's trouble (one of ``words``, when given)."""
    words = [w.lower() for w in words]
    wrong = {}
    for cid in faulty:
        o = outcome.controllers[cid]
        named = o.error is not None and (not words or any(w in o.error.lower() for w in words))
        if o.status is Status.CONFIRMED or o.error_kind not in kinds or not named:
            wrong[cid] = (o.status.value, o.error_kind, o.error)
    assert not wrong, f"faults not reported as {sorted(kinds)} naming {words}: {wrong}"
