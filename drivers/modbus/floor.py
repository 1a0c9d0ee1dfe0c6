"""The benchmark's floor for one cabinet: the driver's own requests, pre-encoded, over a plain stream.

The requests come from the driver's compile step (``ModbusDriver.requests``) so that the floor can
never drift from what the driver sends; only the MBAP header is added here, before timing.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING

from drivers.base import ControllerTimeout, ControllerUnreachable, ProtocolFault
from drivers.modbus.driver import ModbusDriver, modbus_settings
from lightctl.model.values import ChannelId, ChannelState

if TYPE_CHECKING:
    from lightctl.model.installation import ControllerConfig

MBAP = struct.Struct(">HHHB")


class ModbusFloorClient:
    def __init__(self, controller: ControllerConfig, states: Mapping[ChannelId, ChannelState]) -> None:
        driver = ModbusDriver(controller)
        settings = modbus_settings(controller)
        self.controller_id = controller.id
        self.host, self.port, self.unit = settings.host, settings.port, settings.unit
        self.timeout_s = controller.timeout_s
        requests = [*driver.requests(states), driver.status_request()]
        self.frames = [
            MBAP.pack(tid, 0, len(r.pdu) + 1, self.unit) + r.pdu for tid, r in enumerate(requests, 1)
        ]
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise ControllerUnreachable(self.controller_id, f"floor cannot connect: {exc}") from None

    async def run(self) -> int:
        reader, writer = self.reader, self.writer
        if reader is None or writer is None:
            raise ControllerUnreachable(self.controller_id, "floor client not connected")
        try:
            async with asyncio.timeout(self.timeout_s):
                for frame in self.frames:
                    writer.write(frame)
                    header = await reader.readexactly(6)
                    _, pid, length = struct.unpack(">HHH", header)
                    reply = await reader.readexactly(length)
                    if pid != 0 or header[:2] != frame[:2] or reply[1] & 0x80:
                        raise ProtocolFault(self.controller_id, f"floor: unexpected reply {reply.hex()}")
        except TimeoutError:
            raise ControllerTimeout(self.controller_id, "floor: no reply in time") from None
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise ControllerUnreachable(self.controller_id, f"floor: {exc}") from None
        return len(self.frames)

    async def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
