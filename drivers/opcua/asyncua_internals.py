"""The asyncua internals the OPC UA driver relies on, in one place: written for asyncua 2.1.0.

What, and why it is worth an internal (measured on the 2-core machine, 4 Dec 2026, same window):

* **A request sent without awaiting, with its parameters encoded ahead** (:func:`send_now`). A
  show's beat must put every controller's request on the wire in one pass of the loop, before
  ``fire`` returns; asyncua sends only by awaiting (``UaClient.write``), and a task started at the
  beat writes after the whole pass (before prepared sends were fired, OPC UA's cues left 20-40 ms
  late in ``bench show``). :func:`send_now` does what ``UASocketProtocol._send_request`` does
  (header from ``_setup_request_header``, ``_request_id``, ``revolve_security_token``, the secure
  channel's ``message_to_binary``, the future in ``_callbackmap``, ``transport.write``), with the
  Write's or Call's parameters encoded when the batch was compiled: a fire costs 31-32 µs of CPU
  (``python -m drivers.opcua.perf --fires 500``). It bypasses ``UaClient``'s request semaphore and
  observer, as the beat's one request per session may.
* **Dropped**: the whole secure-channel message built before the beat and sent as built when
  nothing else had gone out on the channel (``Framed``). It took a fire from 31-32 to 17-19 µs in
  ``perf --fires 500``, but ``bench show --protocol opcua --controllers 50`` showed no gain in five
  interleaved pairs (the daemon's pass p99 7.2-11.3 ms with it, 3.3-8.0 ms without; spread p99
  7.3-15.1 against 4.6-10.0 ms): 14 µs for each of 50 PLCs is under the show's noise, and it wrote
  the channel's sequence number and request handle back and forth.

:func:`usable` turns these off, with one log line, when asyncua is not a version named in
:data:`WRITTEN_FOR` or a name used here is missing: the driver then sends through asyncua's own
``write``/``call`` and a show's OPC UA cues through ``apply``. tests/test_opcua_internals.py is the
contract: it fails, never skips, when asyncua moves one of them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState, UASocketProtocol
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import nodeid_to_binary, struct_from_binary, struct_to_binary

log = logging.getLogger(__name__)

WRITTEN_FOR = ("2.1.0",)
"""asyncua versions whose internals this module was checked against (by the contract test)."""
PROTOCOL_NAMES = (
    "_setup_request_header", "_request_id", "_request_handle", "_callbackmap", "_connection", "transport",
    "revolve_security_token", "check_answer", "pre_request_hook", "authentication_token", "timeout",
)
CLIENT_NAMES = ("_wait_until_ready",)
CONNECTION_NAMES = ("message_to_binary",)


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """A request's type id and parameters in binary; the header is added per send."""

    type_id: bytes
    parameters: bytes
    response: type


def encode_write(writes: list[ua.WriteValue]) -> EncodedRequest:
    return EncodedRequest(
        nodeid_to_binary(ua.FourByteNodeId(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary)),
        struct_to_binary(ua.WriteParameters(NodesToWrite=writes)),
        ua.WriteResponse,
    )


def encode_call(methods: list[ua.CallMethodRequest]) -> EncodedRequest:
    return EncodedRequest(
        nodeid_to_binary(ua.FourByteNodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary)),
        struct_to_binary(ua.CallParameters(MethodsToCall=methods)),
        ua.CallResponse,
    )


INSTALLED = version("asyncua")
_reported: set[str] = set()


def why_not(client: Client, protocol: Any) -> str | None:
    """None if this module may send on ``protocol``; else why not (logged once per reason)."""
    reason = _why_not(client, protocol)
    if reason is not None and reason not in _reported:
        _reported.add(reason)
        log.warning("the pre-encoded OPC UA send is off (%s): requests go through asyncua's own write/call, "
                    "and a show's OPC UA cues through apply()", reason)
    return reason


def _why_not(client: Client, protocol: Any) -> str | None:
    if INSTALLED not in WRITTEN_FOR:
        return f"asyncua {INSTALLED}, this module was written for {', '.join(WRITTEN_FOR)}"
    missing = [n for n in PROTOCOL_NAMES if not hasattr(protocol, n)]
    missing += [n for n in CLIENT_NAMES if not hasattr(client, n)]
    connection = getattr(protocol, "_connection", None)
    missing += [n for n in CONNECTION_NAMES if not hasattr(connection, n)]
    if missing:
        return f"asyncua {INSTALLED} has no {', '.join(missing)}"
    return None


def usable(client: Client) -> Any | None:
    """The client's socket protocol if requests may be sent through this module, else None."""
    protocol = client.uaclient.protocol
    if protocol is None or why_not(client, protocol) is not None:
        return None
    return protocol


def is_ready(client: Client, protocol: Any) -> bool:
    """True if ``protocol`` is still the client's open socket and a request may go out on it now.

    asyncua awaits ``pre_request_hook`` before each request; the client's own hook
    (``Client._wait_until_ready``) raises while the client is disconnected or disconnecting and
    waits while it reconnects. Here the client must be connected (nothing to wait for), and any
    other hook, whose condition is unknown, declines."""
    uaclient = client.uaclient
    if uaclient.protocol is not protocol or protocol.transport is None or uaclient.state is not UaClientState.CONNECTED:
        return False
    hook = protocol.pre_request_hook
    return hook is None or hook == client._wait_until_ready


def ready_protocol(client: Client) -> Any | None:
    """The client's socket protocol if a request can go out on it now without awaiting."""
    protocol = usable(client)
    return protocol if protocol is not None and is_ready(client, protocol) else None


def send_now(protocol: UASocketProtocol, request: EncodedRequest) -> asyncio.Future[Buffer]:
    """Build and send the request as ``UASocketProtocol._send_request`` does, before returning;
    the future gets the response's body."""
    if protocol.transport is None:
        raise ConnectionError("Connection is not open")
    header = ua.RequestHeader()
    protocol._setup_request_header(header, protocol.timeout)
    request_id = protocol._request_id + 1
    try:
        body = b"".join((request.type_id, struct_to_binary(header), request.parameters))
        protocol.revolve_security_token()
        message = protocol._connection.message_to_binary(body, message_type=ua.MessageType.SecureMessage, request_id=request_id)
    except Exception:
        protocol._request_handle -= 1
        raise
    protocol._request_id = request_id
    future: asyncio.Future[Buffer] = asyncio.get_running_loop().create_future()
    protocol._callbackmap[request_id] = future
    protocol.transport.write(message)
    return future


async def response(protocol: UASocketProtocol, request: EncodedRequest, sent: asyncio.Future[Buffer]) -> Any:
    """The decoded response's ``Results`` once it arrives (the caller bounds the wait). Raises as
    asyncua's own ``write``/``call`` do."""
    data = await sent
    protocol.check_answer(data, f" in response to {request.response.__name__}")
    decoded = struct_from_binary(request.response, data)
    decoded.ResponseHeader.ServiceResult.check()
    return decoded.Results


async def send_encoded(client: Client, protocol: UASocketProtocol, request: EncodedRequest) -> Any:
    """Send on the client's session and return the decoded response's ``Results`` (the caller
    bounds the wait). Raises as asyncua's own ``write``/``call`` do."""
    hook = protocol.pre_request_hook
    if hook is not None:
        await hook()  # raises while the client is disconnected or disconnecting
    return await response(protocol, request, send_now(protocol, request))


__all__ = [
    "INSTALLED", "WRITTEN_FOR", "EncodedRequest", "encode_call", "encode_write", "is_ready", "ready_protocol", "response",
    "send_encoded", "send_now", "usable", "why_not",
]
