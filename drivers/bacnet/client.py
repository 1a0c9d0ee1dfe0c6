"""The daemon's one BACnet/IP application, shared by every BACnet driver in an event loop.

A BACnet/IP node is one UDP endpoint: the drivers of all buildings share it (and its invoke ids,
device cache, COV notifications and I-Am replies). It is opened by the first driver that needs
it and closed when the last one lets go, so tests leave no socket behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

from bacpypes3.apdu import (
    APDU,
    ConfirmedCOVNotificationRequest,
    IAmRequest,
    SimpleAckPDU,
    UnconfirmedCOVNotificationRequest,
)
from bacpypes3.app import Application
from bacpypes3.errors import ServicesError
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject

from drivers.bacnet import bacpypes3_internals as internals
from drivers.bacnet.direct import DirectWrites
from drivers.bacnet.frames import broadcast_frame
from drivers.bacnet.settings import BACNET_PORT, split_address

log = logging.getLogger(__name__)

CLIENT_DEVICE_INSTANCE = 4_194_000
"""The daemon's own device instance (high in the range, away from buildings' numbering)."""
APDU_TIMEOUT_MS = 10_000
APDU_RETRIES = 0
"""No retransmission inside the stack: each call is bounded by its controller's ``timeout_s`` and
the core retries. A stack retry after a fixed time only doubles the load on a device that is
slow because it is busy (300 buildings answering one switch at once)."""

CovHandler = Callable[[Any, list[Any]], None]
"""(monitored object identifier, list of PropertyValue) -> None"""


class _ClientApplication(Application):  # type: ignore[misc]
    iam_listeners: list[Callable[[IAmRequest], None]]
    cov_handlers: dict[tuple[str, int], CovHandler]

    async def confirmation(self, apdu: APDU) -> None:
        """Drop a reply to a request we already gave up on (its future was cancelled by the
        caller's timeout): bacpypes3 would try to set its result and log InvalidStateError."""
        if not internals.given_up(self, apdu):
            await super().confirmation(apdu)

    async def do_IAmRequest(self, apdu: IAmRequest) -> None:
        for listener in list(self.iam_listeners):
            listener(apdu)
        await super().do_IAmRequest(apdu)

    async def do_UnconfirmedCOVNotificationRequest(self, apdu: UnconfirmedCOVNotificationRequest) -> None:
        handler = self.cov_handlers.get((str(apdu.pduSource), int(apdu.subscriberProcessIdentifier)))
        if handler is not None:
            handler(apdu.monitoredObjectIdentifier, list(apdu.listOfValues))

    async def do_ConfirmedCOVNotificationRequest(self, apdu: ConfirmedCOVNotificationRequest) -> None:
        handler = self.cov_handlers.get((str(apdu.pduSource), int(apdu.subscriberProcessIdentifier)))
        if handler is None:
            raise ServicesError(errorCode="unknownSubscription")
        handler(apdu.monitoredObjectIdentifier, list(apdu.listOfValues))
        await self.response(SimpleAckPDU(context=apdu))


RECEIVE_BUFFER = 4 * 1024 * 1024
"""The one switch brings hundreds of replies to one socket at once; the kernel's default buffer
(about 200 datagrams) drops the rest while the process is busy decoding."""


async def bound(app: Any) -> None:
    """Wait until bacpypes3 has bound an application's sockets, then widen their receive buffers."""
    await internals.link_bound(app)
    sockets = [sock for endpoint in internals.endpoints(app) if (sock := endpoint.socket) is not None]
    if not sockets:
        log.warning("no BACnet/IP socket found in bacpypes3's link layers: receive buffers left at the "
                    "kernel's default (replies to a large switch may be dropped)")
    for sock in sockets:
        force = getattr(socket, "SO_RCVBUFFORCE", None)  # Linux; needs CAP_NET_ADMIN
        try:
            sock.setsockopt(socket.SOL_SOCKET, force if force is not None else socket.SO_RCVBUF, RECEIVE_BUFFER)
        except OSError:
            with contextlib.suppress(OSError):  # capped at net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def default_local_address(device_host: str) -> str:
    """127.0.0.1 on a free port for loopback devices (a client on 47808 would swallow their
    traffic: bacpypes3 takes any 127.x address on its own port for itself); else every
    interface on the standard port."""
    if ipaddress.IPv4Address(device_host).is_loopback:
        return f"127.0.0.1/8:{_free_udp_port('127.0.0.1')}"
    return f"0.0.0.0:{BACNET_PORT}"


class BacnetClient:
    def __init__(self, local_address: str) -> None:
        self.local_address = local_address
        device = DeviceObject(
            objectIdentifier=("device", CLIENT_DEVICE_INSTANCE),
            objectName="lightctl",
            vendorIdentifier=999,
            maxApduLengthAccepted=1476,
            segmentationSupported="segmentedBoth",
            apduTimeout=APDU_TIMEOUT_MS,
            numberOfApduRetries=APDU_RETRIES,
        )
        port = NetworkPortObject(
            local_address,
            objectIdentifier=("network-port", 1),
            objectName="NetworkPort-1",
            networkNumber=0,
            networkNumberQuality="unknown",
        )
        app = _ClientApplication.from_object_list([device, port])
        app.iam_listeners = []
        app.cov_handlers = {}
        self.app: _ClientApplication = app
        self.users = 0
        self.direct: DirectWrites | None = None
        self._next_process_id = 1

    async def ready(self) -> None:
        """Start: bacpypes3's fast paths installed (once per process), the sockets bound."""
        internals.install()
        await bound(self.app)
        self.direct = DirectWrites.open(self.app)

    def request(self, apdu: APDU) -> asyncio.Future[Any]:
        """Send a request; the future's exception is the ErrorRejectAbortNack the device sent."""
        future: asyncio.Future[Any] = self.app.request(apdu)
        return future

    def broadcast(self, apdu: APDU, address: str) -> None:
        """Send an unconfirmed request as a BACnet/IP Original-Broadcast-NPDU to ``address``
        (``a.b.c.d[:port]``, the subnet's broadcast address). bacpypes3 broadcasts only to its own
        port on its own subnet, and sends anything addressed to a host as an
        Original-Unicast-NPDU, which devices drop when it arrives on a broadcast address."""
        endpoint = internals.local_endpoint(self.app)
        if endpoint is None:
            raise RuntimeError("the BACnet client has no BACnet/IP socket to broadcast from")
        endpoint.transport.sendto(broadcast_frame(apdu), split_address(address))

    def process_id(self) -> int:
        value = self._next_process_id
        self._next_process_id = value % 4_000_000 + 1
        return value

    def close(self) -> None:
        self.app.close()


_clients: dict[int, BacnetClient] = {}
_lock: dict[int, asyncio.Lock] = {}


async def acquire(local_address: str | None, device_host: str) -> BacnetClient:
    """The loop's shared client, opened on first use on ``local_address`` (or the default)."""
    key = id(asyncio.get_running_loop())
    lock = _lock.setdefault(key, asyncio.Lock())
    async with lock:
        client = _clients.get(key)
        if client is None:
            client = BacnetClient(local_address or default_local_address(device_host))
            await client.ready()
            _clients[key] = client
        client.users += 1
        return client


def release(client: BacnetClient) -> None:
    client.users -= 1
    if client.users > 0:
        return
    for key, known in list(_clients.items()):
        if known is client:
            del _clients[key]
            _lock.pop(key, None)
    client.close()
