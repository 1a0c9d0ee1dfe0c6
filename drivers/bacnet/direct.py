"""Writes put straight onto the client's socket, their replies taken straight off it.

A write request goes out pre-encoded (services.py), yet bacpypes3's client still walks it through
its application, transaction state machine, network and BVLL layers, each building and encoding
its own PDU, in a task of its own after the sending task has yielded. Here an unsegmented write
to a station on the local network is framed once (frames.frame) and sent on the client's own UDP
socket; its reply is recognised in the socket callback by source address and invoke id and never
enters bacpypes3's layers. Invoke ids come from bacpypes3's own table of requests in flight
(bacpypes3_internals.claim_invoke_id), so the two paths never hand a device one id at once.

A reply other than a simple ack is decoded here with bacpypes3's decoders (``APDU.decode``, then
``APCISequence.decode`` for an error) and raised as bacpypes3 would raise it: a
WritePropertyMultiple refused part-way says which write it stopped at, so nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from bacpypes3.apdu import (
    APDU,
    APCISequence,
    ConfirmedRequestPDU,
    ErrorPDU,
    ErrorRejectAbortNack,
    SimpleAckPDU,
)
from bacpypes3.pdu import PDU, Address

from drivers.bacnet import bacpypes3_internals as internals
from drivers.bacnet.frames import SIMPLE_ACK, apdu_offset, frame, reply_of, with_invoke_id

log = logging.getLogger(__name__)


class UnexpectedReply(Exception):
    """A write was answered with something other than an ack, error, reject or abort."""


def raise_for_reply(data: bytes, source: tuple[str, int]) -> None:
    """Return on a simple ack; raise the device's error, reject or abort (ErrorRejectAbortNack,
    typed: ``WritePropertyMultipleError`` carries the first failed write) decoded from the reply's
    own bytes; UnexpectedReply for anything else."""
    reply = reply_of(data)
    if reply is not None and reply[0] == SIMPLE_ACK:  # the usual answer, told without decoding
        return
    offset = apdu_offset(data)
    if offset is None:
        raise UnexpectedReply(f"not a BACnet/IP reply: {data.hex()}")
    try:
        apdu = APDU.decode(PDU(data[offset:], source=Address(f"{source[0]}:{source[1]}")))
        if isinstance(apdu, SimpleAckPDU):
            return
        if isinstance(apdu, ErrorPDU):
            apdu = APCISequence.decode(apdu)
    except Exception as exc:  # bacpypes3's decoders raise a variety of errors on bad octets
        raise UnexpectedReply(f"undecodable reply {data[offset:].hex()}: {exc!r}") from None
    if isinstance(apdu, ErrorRejectAbortNack):
        raise apdu
    raise UnexpectedReply(f"a write answered with {type(apdu).__name__}")


class DirectWrites:
    def __init__(self, app: Any, endpoint: internals.Endpoint) -> None:
        self.app = app
        self.pending: dict[tuple[str, int, int], asyncio.Future[bytes]] = {}
        self.transport = endpoint.transport
        endpoint.intercept(self._take_replies)

    @classmethod
    def open(cls, app: Any) -> DirectWrites | None:
        """Direct writes on the application's socket, or None (logged) where they cannot be."""
        if not internals.enabled(internals.DIRECT_WRITES):
            return None  # install() has logged why
        endpoint = internals.local_endpoint(app)
        if endpoint is None:
            log.warning("bacpypes3 fast path %r is off: the client's link layer is not one plain "
                        "BACnet/IP socket; writes take bacpypes3's own path", internals.DIRECT_WRITES)
            return None
        return cls(app, endpoint)

    def _take_replies(self, received: internals.DatagramHandler) -> internals.DatagramHandler:
        def datagram_received(data: bytes, addr: Any) -> None:
            if self.pending:
                reply = reply_of(data)
                if reply is not None:
                    future = self.pending.pop((addr[0], addr[1], reply[1]), None)
                    if future is not None:
                        if not future.done():
                            future.set_result(data)
                        return
            received(data, addr)

        return datagram_received

    @property
    def available(self) -> bool:
        return not self.transport.is_closing()

    async def write(self, request: ConfirmedRequestPDU) -> bool:
        """Send an encoded write request and wait for its reply: True on a simple ack, the
        device's refusal raised (see ``raise_for_reply``); False, having sent nothing, when 256
        requests to the device are in flight. Cancel (a timeout) to give up on it."""
        reply = self.start(request)
        if reply is None:
            return False
        raise_for_reply(await reply, request.pduDestination.addrTuple)
        return True

    def start(self, request: ConfirmedRequestPDU, framed: bytes | None = None) -> asyncio.Future[bytes] | None:
        """Put an encoded write request on the wire now; the future gives the reply's datagram.
        ``framed``: the request already framed (``frames.frame``, any invoke id). None, with
        nothing sent, when 256 requests to the device are in flight."""
        host, port = request.pduDestination.addrTuple
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        invoke = internals.claim_invoke_id(
            self.app, request, future, lambda candidate: (host, port, candidate) in self.pending
        )
        if invoke is None:
            return None
        key = (host, port, invoke)
        self.pending[key] = future
        future.add_done_callback(partial(self._forget, key))
        data = frame(request, invoke) if framed is None else with_invoke_id(framed, invoke)
        self.transport.sendto(data, (host, port))
        return future

    def _forget(self, key: tuple[str, int, int], future: asyncio.Future[bytes]) -> None:
        if self.pending.get(key) is future:
            del self.pending[key]
