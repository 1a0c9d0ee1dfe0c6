"""Service requests whose parameters are encoded once, before they are needed.

asyncua encodes a request through its generic dataclass codec each time it is sent: about 0.13 ms
of CPU for a Write of a dozen nodes, the bulk of a show cue's cost at the beat. A batch's Write (or
RecallScene Call) never changes while its session lives, so its parameters are encoded when the
batch is compiled (``plan`` before the first beat); sending is then the request header, the
secure-channel framing and one socket write, on the session's own channel with its own request ids
and security policy.

This uses ``UASocketProtocol``'s request bookkeeping (``_setup_request_header``, ``_request_id``,
``_request_handle``, ``_callbackmap``, ``_connection``) exactly as its ``_send_request`` does
(asyncua 2.1); where those are missing (another asyncua), ``can_send_encoded`` is False and the
caller sends through asyncua.

A show's beat goes one step further (``frame``/``send_framed``): the whole secure-channel message
is built before the beat as the channel's next request, and sent as it is if nothing else went out
on the channel in between (asyncua's Publish, its watchdog's read, a read-back); else it is built
again at the beat (``send_now``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import nodeid_to_binary, struct_from_binary, struct_to_binary

_BOOKKEEPING = ("_setup_request_header", "_request_id", "_request_handle", "_callbackmap", "_connection", "transport")


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """A request's type id and parameters in binary; the header is added per send."""

    type_id: bytes
    parameters: bytes
    response: type


@dataclass(frozen=True, slots=True)
class Framed:
    """A request as the secure-channel message its channel would send next: valid while the
    channel's request id, request handle, sequence number and security token are where they were."""

    message: bytes
    request_id: int
    request_handle: int
    sequence_before: int
    sequence_after: int
    token: Any


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


def can_send_encoded(client: Client) -> bool:
    protocol = getattr(client.uaclient, "protocol", None)
    return protocol is not None and all(hasattr(protocol, name) for name in _BOOKKEEPING)


def ready_protocol(client: Client) -> Any | None:
    """The client's socket protocol if a request can go out on it now without awaiting (see
    ``is_ready``) and with the bookkeeping this module uses, else None."""
    protocol: Any = client.uaclient.protocol
    return protocol if protocol is not None and can_send_encoded(client) and is_ready(client, protocol) else None


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


def _body(request: EncodedRequest, header: ua.RequestHeader) -> bytes:
    return b"".join((request.type_id, struct_to_binary(header), request.parameters))


def frame(protocol: Any, request: EncodedRequest) -> Framed | None:
    """The request as the channel's next message, built without sending or moving any counter.
    None while a renewed security token waits to be taken into use (the next request takes it)."""
    connection = protocol._connection
    if connection.next_security_token.TokenId != 0:
        return None
    handle = protocol._request_handle + 1
    header = ua.RequestHeader(
        AuthenticationToken=protocol.authentication_token, RequestHandle=handle, TimeoutHint=int(protocol.timeout * 1000)
    )
    request_id = protocol._request_id + 1
    before = connection._sequence_number
    try:
        message = connection.message_to_binary(
            _body(request, header), message_type=ua.MessageType.SecureMessage, request_id=request_id
        )
        after = connection._sequence_number
    finally:
        connection._sequence_number = before
    return Framed(message, request_id, handle, before, after, connection.security_token)


def send_framed(protocol: Any, framed: Framed) -> asyncio.Future[Buffer] | None:
    """Send a framed request if it is still the channel's next message; else None, nothing sent."""
    connection = protocol._connection
    if (
        protocol._request_id + 1 != framed.request_id
        or protocol._request_handle + 1 != framed.request_handle
        or connection._sequence_number != framed.sequence_before
        or connection.security_token is not framed.token
        or connection.next_security_token.TokenId != 0
        or protocol.transport is None
    ):
        return None
    protocol._request_handle = framed.request_handle
    connection._sequence_number = framed.sequence_after
    return _register_and_write(protocol, framed.request_id, framed.message)


def send_now(protocol: Any, request: EncodedRequest) -> asyncio.Future[Buffer]:
    """Build and send the request as ``UASocketProtocol._send_request`` does; the future gets
    the response's body."""
    if protocol.transport is None:
        raise ConnectionError("Connection is not open")
    header = ua.RequestHeader()
    protocol._setup_request_header(header, protocol.timeout)
    request_id = protocol._request_id + 1
    try:
        body = _body(request, header)
        protocol.revolve_security_token()
        message = protocol._connection.message_to_binary(body, message_type=ua.MessageType.SecureMessage, request_id=request_id)
    except Exception:
        protocol._request_handle -= 1
        raise
    return _register_and_write(protocol, request_id, message)


def _register_and_write(protocol: Any, request_id: int, message: bytes) -> asyncio.Future[Buffer]:
    protocol._request_id = request_id
    future: asyncio.Future[Buffer] = asyncio.get_running_loop().create_future()
    protocol._callbackmap[request_id] = future
    protocol.transport.write(message)
    return future


async def response(protocol: Any, request: EncodedRequest, sent: asyncio.Future[Buffer]) -> Any:
    """The decoded response's ``Results`` once it arrives (the caller bounds the wait). Raises as
    asyncua's own ``write``/``call`` do."""
    data = await sent
    protocol.check_answer(data, f" in response to {request.response.__name__}")
    decoded = struct_from_binary(request.response, data)
    decoded.ResponseHeader.ServiceResult.check()
    return decoded.Results


async def send_encoded(client: Client, request: EncodedRequest) -> Any:
    """Send on the client's session and return the decoded response's ``Results`` (the caller
    bounds the wait). Raises as asyncua's own ``write``/``call`` do."""
    protocol: Any = client.uaclient.protocol
    if protocol is None or protocol.transport is None:
        raise ConnectionError("Connection is not open")
    hook = protocol.pre_request_hook
    if hook is not None:
        await hook()  # raises while the client is disconnected or disconnecting
    return await response(protocol, request, send_now(protocol, request))


__all__ = [
    "EncodedRequest", "Framed", "can_send_encoded", "encode_call", "encode_write", "frame", "is_ready", "ready_protocol",
    "response", "send_encoded", "send_framed", "send_now",
]
