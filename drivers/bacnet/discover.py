"""Who-Is discovery for commissioning: the devices that answer, their names and object lists."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack, IAmRequest, ReadPropertyRequest, WhoIsRequest
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from drivers.bacnet import services
from drivers.bacnet.client import BacnetClient, acquire, release
from drivers.bacnet.settings import LOOPBACK_BROADCAST


@dataclass(slots=True)
class FoundDevice:
    instance: int
    address: str
    vendor_id: int
    max_apdu: int
    name: str | None = None
    objects: list[str] = field(default_factory=list)
    error: str | None = None


async def discover(
    *,
    low: int | None = None,
    high: int | None = None,
    broadcast: str = LOOPBACK_BROADCAST,
    local_address: str | None = None,
    wait_s: float = 2.0,
    timeout_s: float = 2.0,
    details: bool = True,
) -> list[FoundDevice]:
    """Broadcast one Who-Is to ``broadcast``, the subnet's broadcast address (limited to instances
    ``low``..``high``), collect the I-Am replies for ``wait_s``, then read each device's name and
    object list."""
    host = broadcast.split(":")[0]
    client = await acquire(local_address, "127.0.0.1" if host.startswith("127.") else host)
    found: dict[int, FoundDevice] = {}

    def heard(apdu: IAmRequest) -> None:
        instance = int(apdu.iAmDeviceIdentifier[1])
        if (low is not None and instance < low) or (high is not None and instance > high):
            return
        found[instance] = FoundDevice(
            instance, str(apdu.pduSource), int(apdu.vendorID), int(apdu.maxAPDULengthAccepted)
        )

    client.app.iam_listeners.append(heard)
    try:
        who_is = WhoIsRequest()
        if low is not None and high is not None:
            who_is.deviceInstanceRangeLowLimit = low
            who_is.deviceInstanceRangeHighLimit = high
        client.broadcast(who_is, broadcast)
        await asyncio.sleep(wait_s)
        if details:
            await asyncio.gather(*(_describe(client, device, timeout_s) for device in found.values()))
    finally:
        client.app.iam_listeners.remove(heard)
        release(client)
    return sorted(found.values(), key=lambda d: d.instance)


async def _read(client: BacnetClient, device: FoundDevice, prop: str, timeout_s: float) -> Any:
    request = ReadPropertyRequest(
        objectIdentifier=ObjectIdentifier(f"device,{device.instance}"),
        propertyIdentifier=prop,
        destination=Address(device.address),
    )
    async with asyncio.timeout(timeout_s):
        ack = await client.request(request)
    return ack.propertyValue


async def _describe(client: BacnetClient, device: FoundDevice, timeout_s: float) -> None:
    try:
        name = await _read(client, device, "objectName", timeout_s)
        device.name = str(name.cast_out(services.CharacterString))
        objects = await _read(client, device, "objectList", timeout_s)
        ids = objects.cast_out(services.ArrayOfObjectIdentifier)
        device.objects = [f"{oid[0]},{oid[1]}" for oid in ids]
    except TimeoutError:
        device.error = f"no answer within {timeout_s:g} s"
    except ErrorRejectAbortNack as exc:
        device.error = f"refused: {exc}"
