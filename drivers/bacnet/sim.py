"""Simulated BACnet building controllers: one device per controller, each on its own loopback
address and the standard port, so that a Who-Is broadcast to 127.255.255.255:47808 finds them
all and the daemon talks to each as to a building on the LAN.

bacpypes3 binds with SO_REUSEPORT, so binding an address twice does not fail: it silently splits
the traffic. ``any_port=True`` (tests, benchmarks) therefore hands out loopback addresses that a
probe without SO_REUSEPORT finds free, so tests never clash with each other or with a demo.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from drivers.bacnet import bacpypes3_internals as internals
from drivers.bacnet.profile import load_profile
from drivers.bacnet.settings import BACNET_PORT, BacnetSettings
from drivers.bacnet.simdevice import SimBuilding
from drivers.base import Fault
from lightctl.model.installation import ControllerConfig

FAULT_KINDS = frozenset(
    {"offline", "slow", "error", "lamp_failure", "breaker_trip", "device_fault", "paused", "cov_refused"}
)
"""Besides the common ones: ``paused``, the device's application stalls (nothing is answered,
everything is kept and worked through in order once cleared); ``cov_refused`` (per channel, or
all), SubscribeCOV on the channel's object is refused."""


def _address_pool() -> Iterator[str]:
    """Loopback addresses for simulators started with ``any_port``: a block of 506 per process,
    keyed by its pid, so that two processes do not probe the same address at the same time."""
    key = os.getpid() % 16384
    a, b = 64 + key // 128, (key % 128) * 2
    for offset, c in itertools.product(range(2), range(2, 255)):
        yield f"127.{a}.{b + offset}.{c}"


_POOL = _address_pool()


def free_loopback_address(port: int = BACNET_PORT) -> str:
    """A 127.x.y.z address whose ``port`` nobody holds (probed without SO_REUSEPORT)."""
    for host in _POOL:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        finally:
            probe.close()
        return host
    raise RuntimeError("no free loopback address left")


class BacnetSimulatorHost:
    """Simulated devices for some BACnet controllers, in this process (drivers.base.SimulatorHost)."""

    fault_kinds = FAULT_KINDS

    def __init__(self, controllers: Sequence[ControllerConfig], *, any_port: bool = False) -> None:
        self.controllers = {c.id: c for c in controllers}
        self.any_port = any_port
        self.devices: dict[str, SimBuilding] = {}
        self._addresses: dict[str, str] = {}
        self._faults: dict[str, dict[str, Fault]] = {}

    def _address_of(self, ctrl: ControllerConfig) -> str:
        if ctrl.id not in self._addresses:
            settings: BacnetSettings = ctrl.settings
            host = free_loopback_address() if self.any_port else settings.host
            port = BACNET_PORT if self.any_port else settings.port
            self._addresses[ctrl.id] = f"{host}:{port}"
        return self._addresses[ctrl.id]

    def _make(self, ctrl: ControllerConfig) -> SimBuilding:
        return SimBuilding(ctrl, load_profile(ctrl.profile), self._address_of(ctrl))

    async def start(self) -> None:
        internals.install()
        for ctrl in self.controllers.values():
            self.devices[ctrl.id] = self._make(ctrl)
        await asyncio.gather(*(device.start() for device in self.devices.values()))

    async def stop(self) -> None:
        for device in self.devices.values():
            await device.stop()
        self.devices.clear()

    async def restart(self, controller_id: str) -> None:
        """Power-cycle one device: it comes back on the same address with its state forgotten."""
        await self.devices[controller_id].stop()
        device = self._make(self.controllers[controller_id])
        self.devices[controller_id] = device
        await device.start()
        for fault in self._faults.get(controller_id, {}).values():
            self._apply(device, fault)

    def endpoints(self) -> Mapping[str, Mapping[str, Any]]:
        return {cid: {"address": self._address_of(ctrl)} for cid, ctrl in self.controllers.items()}

    def inject(self, controller_id: str, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {fault.kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        key = f"{fault.kind}/{fault.channel or ''}"
        self._faults.setdefault(controller_id, {})[key] = fault
        self._apply(self.devices[controller_id], fault)

    def clear(self, controller_id: str, kind: str | None = None) -> None:
        faults = self._faults.get(controller_id, {})
        device = self.devices[controller_id]
        for key, fault in list(faults.items()):
            if kind is None or fault.kind == kind:
                del faults[key]
                self._apply(device, fault, clear=True)

    @staticmethod
    def _apply(device: SimBuilding, fault: Fault, clear: bool = False) -> None:
        if fault.kind == "offline":
            device.offline = not clear
        elif fault.kind == "slow":
            device.slow_s = 0.0 if clear else (fault.value if fault.value is not None else 2.0)
        elif fault.kind == "error":
            device.error = not clear
        elif fault.kind == "lamp_failure":
            fraction = 0.0 if clear else (fault.value if fault.value is not None else 1.0)
            device.set_lamp_failure(fault.channel, fraction)
        elif fault.kind == "breaker_trip":
            device.set_breaker_trip(fault.channel, not clear)
        elif fault.kind == "device_fault":
            device.set_device_fault(fault.channel, not clear)
        elif fault.kind == "paused":
            device.set_paused(not clear)
        elif fault.kind == "cov_refused":
            channels = set(device.channels) if fault.channel is None else {fault.channel}
            if clear:
                device.cov_refused -= channels
            else:
                device.cov_refused |= channels

    def request_count(self, controller_id: str) -> int:
        return self.devices[controller_id].requests

    def write_times(self, controller_id: str) -> list[float]:
        return list(self.devices[controller_id].write_times)
