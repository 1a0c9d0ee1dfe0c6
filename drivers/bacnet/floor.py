"""The benchmark's floor for one BACnet device: the driver's requests for a batch (its writes,
then its confirmation read), encoded before timing starts and sent over a plain UDP socket."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bacpypes3.apdu import APDU
from bacpypes3.pdu import Address

from drivers.bacnet import services
from drivers.bacnet.frames import frame, reply_invoke_id
from drivers.bacnet.profile import load_profile
from drivers.bacnet.settings import BacnetSettings
from drivers.base import ControllerTimeout
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelState


class _Replies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[bytes]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        invoke = reply_invoke_id(data)
        future = self.waiting.pop(invoke, None) if invoke is not None else None
        if future is not None and not future.done():
            future.set_result(data)


class BacnetFloorClient:
    def __init__(self, controller: ControllerConfig, states: Mapping[str, ChannelState]) -> None:
        self.controller = controller
        settings: BacnetSettings = controller.settings
        self.target = (settings.host, settings.port)
        profile = load_profile(controller.profile)
        address = Address(f"{settings.host}:{settings.port}")
        points = {ch.id: profile.point_object(ch.point) for ch in controller.channels}
        writes = [
            services.channel_write(cid, points[cid], state, profile, settings.priority)
            for cid, state in states.items()
            if cid in points
        ]
        write_apdus: list[APDU] = (
            [services.wpm_request(b, address) for b in services.wpm_batches(writes, profile.max_apdu)]
            if profile.write_property_multiple
            else [services.wp_request(w, address) for w in writes]
        )
        # the driver's read-back when the device holds what was written: present values only
        reads = [(services.object_id(points[cid]), "presentValue") for cid in states if cid in points]
        chunk = profile.rpm_properties
        read_apdus: list[APDU] = (
            [services.rpm_request(reads[i : i + chunk], address) for i in range(0, len(reads), chunk)]
            if profile.read_property_multiple
            else [services.rp_request(read, address) for read in reads]
        )
        invoke = iter(range(256))
        self.phases: list[list[tuple[int, bytes]]] = []
        for apdus in (write_apdus, read_apdus):
            phase = []
            for apdu in apdus:
                invoke_id = next(invoke)
                phase.append((invoke_id, frame(apdu, invoke_id)))
            self.phases.append(phase)
        self.timeout_s = controller.timeout_s
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Replies | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Replies, local_addr=("127.0.0.1", 0), remote_addr=self.target
        )
        self._transport, self._protocol = transport, protocol

    async def run(self) -> int:
        assert self._transport is not None and self._protocol is not None
        loop = asyncio.get_running_loop()
        sent = 0
        for phase in self.phases:
            futures = []
            for invoke_id, data in phase:
                future: asyncio.Future[bytes] = loop.create_future()
                self._protocol.waiting[invoke_id] = future
                futures.append(future)
                self._transport.sendto(data)
            try:
                async with asyncio.timeout(self.timeout_s):
                    await asyncio.gather(*futures)
            except TimeoutError:
                raise ControllerTimeout(self.controller.id, "floor: no reply in time") from None
            sent += len(phase)
        return sent

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
