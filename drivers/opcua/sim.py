"""Simulated bridge lighting PLCs (``SimulatorHost``): one asyncua server per configured
controller, all in this process, sharing one namespace 0 (see sim_server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from drivers.base import Fault
from drivers.opcua.settings import OpcUaSettings
from drivers.opcua.sim_plc import COMMON_STACK, FAULT_KINDS, BridgePlc, PlcStack
from drivers.opcua.sim_server import standard_space
from lightctl.model.installation import ControllerConfig

log = logging.getLogger(__name__)

TICK_S = 0.5
"""Physics step of every PLC (fades, energy); reads and writes also bring a PLC up to date."""


class OpcUaSimulator:
    """SimulatorHost for OPC UA: the PLCs of some controllers, in this process. With ``any_port``
    each binds a free port on ``host``; otherwise its configured address."""

    fault_kinds = FAULT_KINDS

    def __init__(
        self,
        controllers: Sequence[ControllerConfig],
        *,
        any_port: bool = False,
        host: str = "127.0.0.1",
        pki_dir: Path | None = None,
        stack: PlcStack = COMMON_STACK,
    ) -> None:
        self.plcs: dict[str, BridgePlc] = {}
        for ctrl in controllers:
            settings: OpcUaSettings = ctrl.settings
            if any_port:
                self.plcs[ctrl.id] = BridgePlc(ctrl, host, 0, pki_dir, stack)
            else:  # the configured address, as the demo's config points the daemon there
                self.plcs[ctrl.id] = BridgePlc(ctrl, *settings.host_port, pki_dir, stack)
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self.startup_s: float | None = None

    async def start(self) -> None:
        started = time.perf_counter()
        await standard_space()
        for plc in self.plcs.values():  # one after another: each is CPU work, ~10 ms
            await plc.start()
        self.startup_s = time.perf_counter() - started
        self._ticker = asyncio.create_task(self._tick_loop())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.settle()
        await asyncio.gather(*(plc.stop() for plc in self.plcs.values()))

    async def settle(self) -> None:
        """Wait for the work that inject() and clear() started."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def restart(self, controller_id: str) -> None:
        await self.plcs[controller_id].restart()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            for plc in self.plcs.values():
                try:
                    await plc.refresh()
                except Exception:
                    log.exception("simulated PLC %s: refresh failed", plc.controller.id)

    def endpoints(self) -> Mapping[str, Mapping[str, Any]]:
        return {cid: {"endpoint": plc.url, "host": None, "port": None} for cid, plc in self.plcs.items()}

    def inject(self, controller_id: str, fault: Fault) -> None:
        self._keep(self.plcs[controller_id].inject(fault))

    def clear(self, controller_id: str, kind: str | None = None) -> None:
        self._keep(self.plcs[controller_id].clear(kind))

    def request_count(self, controller_id: str) -> int:
        return sum(self.plcs[controller_id].hooks.counts.values())

    def write_times(self, controller_id: str) -> list[float]:
        return list(self.plcs[controller_id].hooks.write_times)

    def service_count(self, controller_id: str, service: str) -> int:
        """Requests of one service (``Write``, ``Read``, ``Call``...) since start."""
        return self.plcs[controller_id].hooks.counts[service]

    def _keep(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
