"""Writes put straight onto the client's socket, their acks taken straight off it.

A write request goes out pre-encoded (services.py), yet bacpypes3's client still walks it through
its application, transaction state machine, network and BVLL layers, each building and encoding
its own PDU: about 0.3 ms per request, paid after the sending task has yielded. In a show's beat
that put the buildings' cues some 25 ms behind the other protocols'. Here an unsegmented write to
a station on the local network is framed once (frames.frame) and sent on the client's own UDP
transport; its reply is recognised in the socket callback by source address and invoke id and
never enters bacpypes3.

Invoke ids come from bacpypes3's own counter and are entered in its table of requests in flight
(as ``Application.request`` does), so the two paths never hand a device the same id at once.
Only a simple ack is handled here: any other reply (error, reject, abort) is reported as such,
and the driver repeats the request the ordinary way to get bacpypes3's typed error for it.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from bacpypes3.apdu import ConfirmedRequestPDU

from drivers.bacnet.frames import SIMPLE_ACK, frame, reply_of, with_invoke_id


class DirectWrites:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.pending: dict[tuple[str, int, int], asyncio.Future[int]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        layers = list(app.link_layers.values())
        server = getattr(layers[0], "server", None) if len(layers) == 1 else None
        protocol = getattr(server, "local_protocol", None)
        transport = getattr(server, "local_transport", None)
        if protocol is None or transport is None:
            return  # not a plain BACnet/IP link layer: every request takes bacpypes3's path
        received = protocol.datagram_received

        def datagram_received(data: bytes, addr: Any) -> None:
            if self.pending:
                reply = reply_of(data)
                if reply is not None:
                    future = self.pending.pop((addr[0], addr[1], reply[1]), None)
                    if future is not None:
                        if not future.done():
                            future.set_result(reply[0])
                        return
            received(data, addr)

        protocol.datagram_received = datagram_received
        self.transport = transport

    @property
    def available(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def write(self, request: ConfirmedRequestPDU) -> bool:
        """Send an encoded write request; True on a simple ack, False on any other reply.
        Cancel (a timeout) to give up on it."""
        reply = self.start(request)
        return reply is not None and await reply == SIMPLE_ACK

    def start(self, request: ConfirmedRequestPDU, framed: bytes | None = None) -> asyncio.Future[int] | None:
        """Put an encoded write request on the wire now; the future gives the reply's PDU type
        (``SIMPLE_ACK`` or another). ``framed``: the request already framed (``frames.frame``,
        any invoke id). None, with nothing sent, when 256 requests to the device are in flight
        (bacpypes3 then queues it)."""
        assert self.transport is not None
        app = self.app
        destination = request.pduDestination
        host, port = destination.addrTuple
        in_use = {pdu.apduInvokeID for pdu, _ in app._requests.get(destination, ())}
        invoke = app.next_invoke_id
        for _ in range(256):
            if invoke not in in_use and (host, port, invoke) not in self.pending:
                break
            invoke = (invoke + 1) % 256
        else:
            return None
        app.next_invoke_id = (invoke + 1) % 256
        request.apduInvokeID = invoke
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        app._requests.setdefault(destination, []).append((request, future))
        future.add_done_callback(partial(app._request_done, request))
        key = (host, port, invoke)
        self.pending[key] = future
        future.add_done_callback(partial(self._forget, key))
        data = frame(request, invoke) if framed is None else with_invoke_id(framed, invoke)
        self.transport.sendto(data, (host, port))
        return future

    def _forget(self, key: tuple[str, int, int], future: asyncio.Future[int]) -> None:
        if self.pending.get(key) is future:
            del self.pending[key]
