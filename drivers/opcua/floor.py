"""The benchmark's floor for one PLC: the driver's own Write (or Call) and Read, pre-encoded.

``connect()`` (untimed) resolves the node ids with the real driver, then opens a bare TCP
connection and does Hello, OpenSecureChannel (security None), CreateSession and ActivateSession
by hand; it encodes the batch's request and the confirmation Read with their sequence numbers.
``run()`` only writes those bytes and reads the replies. The requests come from
``OpcUaDriver.compile`` and ``read_params``, so the floor cannot drift from what the driver sends.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from typing import Any

from asyncua import ua
from asyncua.common.connection import SecureConnection, TransportLimits
from asyncua.common.utils import Buffer, create_nonce
from asyncua.crypto.security_policies import SecurityPolicyNone
from asyncua.ua.ua_binary import (
    header_from_binary,
    nodeid_from_binary,
    struct_from_binary,
    struct_to_binary,
    uatcp_to_binary,
)

from drivers.base import ControllerTimeout, ControllerUnreachable, ProtocolFault
from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.settings import OpcUaSettings
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelId, ChannelState

HEADER = struct.Struct("<3scI")
SEQUENCE = struct.Struct("<II")
SEQUENCE_AT = 16
"""MSG chunk: header (8), secure channel id (4), token id (4), then sequence number and request id."""
BUFFER = 65535
_SERVICE_FAULT = ua.FourByteNodeId(ua.ObjectIds.ServiceFault_Encoding_DefaultBinary)


class OpcUaFloorClient:
    def __init__(self, controller: ControllerConfig, states: Mapping[ChannelId, ChannelState]) -> None:
        settings: OpcUaSettings = controller.settings
        if settings.secure:
            raise ValueError(f"{controller.id}: the floor speaks security None only")
        self.controller = controller
        self.controller_id = controller.id
        self.states = dict(states)
        self.url = settings.url
        self.host, self.port = settings.host_port
        self.timeout_s = controller.timeout_s
        self.frames: list[bytearray] = []
        self._close_frame = bytearray()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._channel = SecureConnection(SecurityPolicyNone(), TransportLimits(BUFFER, BUFFER, 0, 0))
        self._request_id = 0
        self._sent = 0
        self._handle = 0
        self._token = ua.NodeId()

    async def connect(self) -> None:
        driver = OpcUaDriver(self.controller)
        try:
            await driver.connect()
            resolved = driver.resolved
            assert resolved is not None
        finally:
            await driver.close()
        compiled = driver.compile(self.states, resolved)
        try:
            async with asyncio.timeout(self.timeout_s * 4):
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                await self._handshake()
        except (OSError, TimeoutError) as exc:
            await self.close()
            raise ControllerUnreachable(self.controller_id, f"floor cannot connect: {exc}") from None
        if compiled.call is not None:
            command: Any = ua.CallRequest(Parameters=ua.CallParameters(MethodsToCall=[compiled.call]))
        else:
            command = ua.WriteRequest(Parameters=ua.WriteParameters(NodesToWrite=compiled.writes))
        confirm = ua.ReadRequest(Parameters=driver.read_params(list(self.states), resolved))
        self._sent = self._request_id  # the handshake's; run() numbers the frames after it
        self.frames = [bytearray(self._encode(command)), bytearray(self._encode(confirm))]
        self._close_frame = bytearray(self._encode(ua.CloseSessionRequest(DeleteSubscriptions=True)))
        for frame in (*self.frames, self._close_frame):
            if frame[3:4] != b"F" or len(frame) != int.from_bytes(frame[4:8], "little"):
                raise ProtocolFault(self.controller_id, "floor: a request does not fit one chunk")

    async def _handshake(self) -> None:
        hello = ua.Hello(EndpointUrl=self.url, ReceiveBufferSize=BUFFER, SendBufferSize=BUFFER)
        await self._exchange(uatcp_to_binary(ua.MessageType.Hello, hello))
        params = ua.OpenSecureChannelParameters(
            ClientProtocolVersion=0,
            RequestType=ua.SecurityTokenRequestType.Issue,
            SecurityMode=ua.MessageSecurityMode.None_,
            ClientNonce=b"",
            RequestedLifetime=3_600_000,
        )
        body = await self._exchange(
            self._encode(ua.OpenSecureChannelRequest(Parameters=params), ua.MessageType.SecureOpen)
        )
        response = struct_from_binary(ua.OpenSecureChannelResponse, body)
        self._channel.set_channel(response.Parameters, ua.SecurityTokenRequestType.Issue, b"")
        session = ua.CreateSessionParameters(
            ClientDescription=ua.ApplicationDescription(
                ApplicationUri="urn:lightctl:bench-floor", ApplicationType=ua.ApplicationType.Client
            ),
            EndpointUrl=self.url,
            SessionName=f"floor {self.controller_id}",
            ClientNonce=create_nonce(32),
            RequestedSessionTimeout=60_000,
        )
        body = await self._exchange(self._encode(ua.CreateSessionRequest(Parameters=session)))
        created = struct_from_binary(ua.CreateSessionResponse, body)
        self._token = created.Parameters.AuthenticationToken
        activate = ua.ActivateSessionParameters(
            UserIdentityToken=ua.AnonymousIdentityToken(PolicyId="anonymous"), ClientSignature=ua.SignatureData()
        )
        await self._exchange(self._encode(ua.ActivateSessionRequest(Parameters=activate)))

    def _encode(self, request: Any, kind: ua.MessageType = ua.MessageType.SecureMessage) -> bytes:
        self._handle += 1
        self._request_id += 1
        if hasattr(request, "RequestHeader"):
            request.RequestHeader.AuthenticationToken = self._token
            request.RequestHeader.RequestHandle = self._handle
            request.RequestHeader.TimeoutHint = int(self.timeout_s * 1000)
        frame: bytes = self._channel.message_to_binary(struct_to_binary(request), kind, self._request_id)
        return frame

    async def _exchange(self, frame: bytes) -> Buffer:
        """Send one frame, return the reply's body (after the security and sequence headers)."""
        reader, writer = self.reader, self.writer
        if reader is None or writer is None:
            raise ControllerUnreachable(self.controller_id, "floor client not connected")
        writer.write(frame)
        head = await reader.readexactly(HEADER.size)
        kind, _, size = HEADER.unpack(head)
        data = await reader.readexactly(size - HEADER.size)
        if kind == b"ERR":
            raise ProtocolFault(self.controller_id, f"floor: error message {data[:8].hex()}")
        if kind in (b"ACK", b"HEL"):
            return Buffer(data)
        frame_in = Buffer(head + data)
        message = self._channel.receive_from_header_and_body(header_from_binary(frame_in), frame_in)
        body = message.body()
        peek = body.copy()
        if nodeid_from_binary(peek) == _SERVICE_FAULT:
            header = struct_from_binary(ua.ResponseHeader, peek)
            raise ProtocolFault(self.controller_id, f"floor: service fault {header.ServiceResult.name}")
        result: Buffer = body  # starts with the response's type id, as asyncua's structs expect
        return result

    def _number(self, frame: bytearray) -> bytes:
        """The frame with the channel's next sequence number and request id (a secure channel
        refuses a repeated sequence number): two integers written in place, nothing encoded."""
        self._sent += 1
        SEQUENCE.pack_into(frame, SEQUENCE_AT, self._sent, self._sent)
        return bytes(frame)

    async def run(self) -> int:
        """Re-runnable: the bench opens the floor's sessions once and runs them every round."""
        try:
            async with asyncio.timeout(self.timeout_s):
                for frame in self.frames:
                    await self._exchange(self._number(frame))
        except TimeoutError:
            raise ControllerTimeout(self.controller_id, "floor: no reply in time") from None
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise ControllerUnreachable(self.controller_id, f"floor: {exc}") from None
        return len(self.frames)

    async def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        if self._close_frame:
            try:
                async with asyncio.timeout(self.timeout_s):
                    self.writer = writer
                    await self._exchange(self._number(self._close_frame))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolFault):
                pass
            finally:
                self.writer = None
        writer.close()
        self.reader = None
