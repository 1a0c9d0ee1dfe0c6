"""Service requests whose parameters are encoded once, before they are needed.

asyncua encodes a request through its generic dataclass codec each time it is sent: about 0.13 ms
of CPU for a Write of a dozen nodes, the bulk of a show cue's cost at the beat. A batch's Write (or
RecallScene Call) never changes while its session lives, so its parameters are encoded when the
batch is compiled (``plan`` before the first beat); sending is then the request header, the
secure-channel framing and one socket write, on the session's own channel with its own request ids
and security policy.

This uses ``UASocketProtocol``'s request bookkeeping (``_setup_request_header``, ``_request_id``,
``_callbackmap``, ``_connection``) exactly as its ``_send_request`` does (asyncua 2.1); where those
are missing (another asyncua), ``send_encoded`` returns None and the caller sends through asyncua.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from asyncua import Client, ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import nodeid_to_binary, struct_from_binary, struct_to_binary

_BOOKKEEPING = ("_setup_request_header", "_request_id", "_request_handle", "_callbackmap", "_connection", "transport")


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


def can_send_encoded(client: Client) -> bool:
    protocol = getattr(client.uaclient, "protocol", None)
    return protocol is not None and all(hasattr(protocol, name) for name in _BOOKKEEPING)


async def send_encoded(client: Client, request: EncodedRequest) -> Any:
    """Send on the client's session and return the decoded response's ``Results`` (the caller
    bounds the wait). Raises as asyncua's own ``write``/``call`` do."""
    uaclient = client.uaclient
    protocol: Any = uaclient.protocol
    if protocol is None or protocol.transport is None:
        raise ConnectionError("Connection is not open")
    hook = protocol.pre_request_hook
    if hook is not None:
        await hook()  # raises while the client is disconnected or disconnecting
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
    data = await future
    protocol.check_answer(data, f" in response to {request.response.__name__}")
    response = struct_from_binary(request.response, data)
    response.ResponseHeader.ServiceResult.check()
    return response.Results


__all__ = ["EncodedRequest", "can_send_encoded", "encode_call", "encode_write", "send_encoded"]
