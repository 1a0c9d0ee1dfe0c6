"""A batch as the OPC UA request it becomes, and that request made ready for a show's beat."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from asyncua import Client, ua

from drivers.base import HeldTurns, fire_with_turns
from drivers.opcua.asyncua_internals import EncodedRequest, is_ready, response, send_now
from drivers.opcua.nodes import NodeRef
from lightctl.model.values import ApplyResult, ChannelId, ChannelReading, ChannelState

log = logging.getLogger(__name__)

VARIANT = {
    "Boolean": ua.VariantType.Boolean, "Byte": ua.VariantType.Byte, "UInt16": ua.VariantType.UInt16,
    "UInt32": ua.VariantType.UInt32, "Int32": ua.VariantType.Int32, "Float": ua.VariantType.Float,
    "Double": ua.VariantType.Double,
}


@dataclass
class Compiled:
    """A batch as the request it becomes (see ``OpcUaDriver.compile``)."""

    writes: list[ua.WriteValue] = field(default_factory=list)
    owners: list[tuple[ChannelId, NodeRef]] = field(default_factory=list)
    call: ua.CallMethodRequest | None = None
    call_ref: NodeRef | None = None
    scene: int | None = None
    encoded: EncodedRequest | None = None
    """The Write or Call with its parameters already encoded: at the beat only a header is added."""


def bare_value(value: Any, type_name: str) -> ua.DataValue:
    """What strict servers accept: a value with its type, no status code, no timestamps."""
    return ua.DataValue(ua.Variant(value, VARIANT[type_name]), StatusCode=None)


def rgb_to_int(rgb: tuple[int, int, int]) -> int:
    return (rgb[0] & 0xFF) << 16 | (rgb[1] & 0xFF) << 8 | (rgb[2] & 0xFF)


def int_to_rgb(value: int) -> tuple[int, int, int]:
    return (value >> 16 & 0xFF, value >> 8 & 0xFF, value & 0xFF)


def partial_refusal(
    refused: list[tuple[NodeRef, ua.StatusCode]], applied: list[NodeRef], now: ChannelReading | str | None
) -> str:
    first, status = refused[0]
    others = "".join(f", {ref.path.rsplit('/', 1)[-1]}: {st.name}" for ref, st in refused[1:])
    taken = ", ".join(ref.path.rsplit("/", 1)[-1] for ref in applied)
    if isinstance(now, ChannelReading):
        state = f"read back: on={now.on}, level={now.level}"
    else:
        state = now or "not read back"
    return f"{first.path}: {status.name}{others}; written all the same: {taken}; {state}"


class Session(Protocol):
    """What a prepared request needs of its driver."""

    @property
    def controller_id(self) -> str: ...

    def holds_session(self, client: Client) -> bool: ...

    async def finish(
        self, states: Mapping[ChannelId, ChannelState], client: Client, compiled: Compiled, sending: Awaitable[Any]
    ) -> ApplyResult: ...


class PreparedRequest:
    """A batch compiled on a session with its Write or Call encoded: ``fire`` sends it on that
    session before returning (one socket write), if the session still holds."""

    def __init__(
        self, driver: Session, client: Client, protocol: Any, compiled: Compiled, states: Mapping[ChannelId, ChannelState]
    ) -> None:
        assert compiled.encoded is not None
        self.driver, self.client, self.protocol = driver, client, protocol
        self.compiled, self.states, self.encoded = compiled, states, compiled.encoded

    def fire(self) -> asyncio.Future[ApplyResult] | None:
        if not self.driver.holds_session(self.client) or not is_ready(self.client, self.protocol):
            return None
        return fire_with_turns((), self._send_first, self._complete, _give_up)

    def _send_first(self) -> asyncio.Future[Any] | None:
        try:
            return send_now(self.protocol, self.encoded)
        except Exception as exc:  # nothing went on the wire: apply() sends again and reports what fails
            log.warning("%s: the prepared send did not go (%r); apply() sends it", self.driver.controller_id, exc)
            return None

    async def _complete(self, sent: asyncio.Future[Any], _held: HeldTurns) -> ApplyResult:
        return await self.driver.finish(self.states, self.client, self.compiled, response(self.protocol, self.encoded, sent))


def _give_up(sent: asyncio.Future[Any]) -> None:
    sent.cancel()  # a response still due is given up (a no-op once it came)
