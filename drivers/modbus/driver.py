"""The Modbus TCP cabinet-controller driver (see drivers/base.py for the rules it follows)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from drivers.base import Driver, HeldTurns, PreparedSend, fire_with_turns, settings_of
from drivers.modbus.profile import Profile, profiles
from drivers.modbus.protocol import ChannelMap, Request, StatusDecoder, compile_batch, status_request
from drivers.modbus.settings import ModbusSettings
from drivers.modbus.transport import ModbusTcpLink, Sending
from lightctl.model.values import ApplyResult, ChannelId, ChannelState, ControllerReading, PlannedOperation

if TYPE_CHECKING:
    from lightctl.model.installation import ControllerConfig

COMPILE_CACHE = 16
"""Compiled batches kept per driver: the same scene is sent again and again (one switch, retries)."""


def channel_map(controller: ControllerConfig, profile: Profile | None = None) -> ChannelMap:
    profile = profile or profiles()[controller.profile]
    return ChannelMap.build(profile, ((ch.id, int(ch.point), ch.dimmable) for ch in controller.channels))


def modbus_settings(controller: ControllerConfig) -> ModbusSettings:
    return settings_of(controller, ModbusSettings)


class ModbusDriver(Driver[ModbusSettings]):
    """One cabinet controller. A batch is at most: register writes (levels, fades), coil writes
    (contactors); a read-back or a full poll is one FC04 of the profile's status block (the
    discrete inputs repeat what that block holds, so a poll does not read them)."""

    level_tolerance: ClassVar[float] = 0.1

    def __init__(self, controller: ControllerConfig) -> None:
        super().__init__(controller, settings_of(controller, ModbusSettings))
        self.cmap = channel_map(controller)
        settings = self.settings
        self.link = ModbusTcpLink(controller.id, settings.host, settings.port, settings.unit, controller.timeout_s)
        self._status = status_request(self.cmap.profile)
        self._decoder = StatusDecoder(self.cmap)
        self._compiled: dict[tuple[tuple[ChannelId, ChannelState], ...], list[Request]] = {}

    async def connect(self) -> None:
        await self.link.connect()

    async def close(self) -> None:
        self.link.close()

    def _unknown(self, states: Mapping[ChannelId, ChannelState]) -> dict[ChannelId, str]:
        circuit_of = self.cmap.circuit_of
        return {ch: f"{self.controller_id} has no channel {ch!r}" for ch in states if ch not in circuit_of}

    def requests(self, states: Mapping[ChannelId, ChannelState]) -> list[Request]:
        """The write requests of a batch, in the order they are sent."""
        key = tuple(states.items())
        compiled = self._compiled.get(key)
        if compiled is None:
            known = {ch: st for ch, st in states.items() if ch in self.cmap.circuit_of}
            registers, coils = compile_batch(self.cmap, known)
            compiled = registers + coils
            if len(self._compiled) >= COMPILE_CACHE:
                self._compiled.clear()
            self._compiled[key] = compiled
        return compiled

    def status_request(self) -> Request:
        return self._status

    def plan(self, states: Mapping[ChannelId, ChannelState]) -> Sequence[PlannedOperation]:
        return [r.planned("holding registers" if r.function_code == 16 else "coils") for r in self.requests(states)]

    async def apply(self, states: Mapping[ChannelId, ChannelState]) -> ApplyResult:
        unknown = self._unknown(states)
        sent = 0
        for request in self.requests(states):
            await self.link.execute(request)
            sent += 1
        return ApplyResult(operations=sent, rejected=unknown)

    def prepare(self, states: Mapping[ChannelId, ChannelState]) -> PreparedSend | None:
        requests = self.requests(states)
        return PreparedRequests(self.link, requests, self._unknown(states)) if requests else None

    async def read(self, channels: Collection[ChannelId] | None = None) -> ControllerReading:
        reply = await self.link.execute(self._status)
        return self._decoder.decode(list(reply.registers), channels)


class PreparedRequests:
    """A batch's requests, compiled: the first goes on the wire at ``fire``, the rest in turn
    while the link's turn is held (``drivers.base.fire_with_turns``)."""

    def __init__(self, link: ModbusTcpLink, requests: list[Request], unknown: dict[ChannelId, str]) -> None:
        self.link, self.requests, self.unknown = link, requests, unknown

    def fire(self) -> asyncio.Future[ApplyResult] | None:
        link = self.link
        return fire_with_turns([link.turn], partial(link.send_first, self.requests[0]), self._complete, link.abandon)

    async def _complete(self, sending: Sending, _held: HeldTurns) -> ApplyResult:
        first, *rest = self.requests
        await self.link.complete(first, sending)
        for request in rest:
            await self.link.execute_held(request)
        return ApplyResult(operations=len(self.requests), rejected=self.unknown)
