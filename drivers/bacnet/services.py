"""BACnet requests as data: the driver's writes and reads, built as bacpypes3 APDUs and decoded
back. Shared by the driver and the benchmark's floor client, so both send the same requests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from bacpypes3.apdu import (
    APCISequence,
    ConfirmedRequestPDU,
    ReadPropertyMultipleACK,
    ReadPropertyMultipleRequest,
    SubscribeCOVRequest,
    WritePropertyMultipleRequest,
    WritePropertyRequest,
)
from bacpypes3.basetypes import (
    BinaryPV,
    ErrorType,
    LightingCommand,
    LightingOperation,
    PropertyIdentifier,
    PropertyReference,
    PropertyValue,
    ReadAccessSpecification,
    WriteAccessSpecification,
)
from bacpypes3.constructeddata import Any as AnyValue
from bacpypes3.constructeddata import Array, ArrayOf, SequenceOf
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Atomic, CharacterString, Null, ObjectIdentifier, Real, Unsigned
from bacpypes3.vendor import get_vendor_info

from drivers.bacnet.profile import ObjectRef, Profile
from lightctl.model.values import ChannelState

ArrayOfObjectIdentifier = ArrayOf(ObjectIdentifier)
__all__ = ["ArrayOfObjectIdentifier", "CharacterString"]

WRITE_OVERHEAD = 8
"""Octets of a WritePropertyMultiple request besides its write specifications."""
WRITE_SPEC_OCTETS = 24
"""A generous estimate of one encoded write specification (object, property, value, priority)."""


@cache
def object_id(ref: ObjectRef) -> ObjectIdentifier:
    return ObjectIdentifier(f"{ref.kind},{ref.instance}")


@dataclass(frozen=True, slots=True)
class Write:
    """One property write for one channel."""

    channel: str
    ref: ObjectRef
    prop: str
    value: Any
    priority: int | None

    def describe(self) -> str:
        at = f" @{self.priority}" if self.priority is not None else ""
        return f"{self.ref} {PropertyIdentifier(self.prop)}{at}"


def channel_write(channel: str, ref: ObjectRef, state: ChannelState | None, profile: Profile,
                  priority: int) -> Write:
    """The write that puts ``state`` on a channel's object at ``priority``; ``None`` relinquishes."""
    if state is None:
        return Write(channel, ref, "presentValue", Null(()), priority)
    output = max(0.0, min(100.0, state.output))
    if ref.kind == "lighting-output":
        if state.fade_s > 0 and profile.fade:
            command = LightingCommand(
                operation=LightingOperation.fadeTo,
                targetLevel=Real(output),
                fadeTime=Unsigned(round(state.fade_s * 1000)),
                priority=Unsigned(priority),
            )
            return Write(channel, ref, "lightingCommand", command, None)
        return Write(channel, ref, "presentValue", Real(output), priority)
    if ref.kind == "analog-output":
        return Write(channel, ref, "presentValue", Real(output), priority)
    if ref.kind == "binary-output":
        return Write(channel, ref, "presentValue", BinaryPV("active" if output > 0 else "inactive"), priority)
    return Write(channel, ref, "presentValue", Unsigned(profile.scene_state(state.on, state.level)), priority)


def stored_value(write: Write) -> float | int | str | None:
    """What the device's present-value will read once ``write`` is in force (None: relinquished)."""
    value = write.value
    if isinstance(value, LightingCommand):
        return float(value.targetLevel)
    if isinstance(value, Null):
        return None
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, Unsigned):
        return int(value)
    return str(value)


def wpm_batches(writes: Sequence[Write], max_apdu: int) -> list[list[Write]]:
    per_request = max(1, (max_apdu - WRITE_OVERHEAD) // WRITE_SPEC_OCTETS)
    return [list(writes[i : i + per_request]) for i in range(0, len(writes), per_request)]


ENCODED_CACHE_SIZE = 4096
"""Requests kept encoded (a switch repeats the same few over and over, and building bacpypes3's
data classes costs more than sending the bytes)."""


def _write_spec(write: Write) -> WriteAccessSpecification:
    item = PropertyValue(propertyIdentifier=write.prop, value=AnyValue(write.value))
    if write.priority is not None:
        item.priority = write.priority
    return WriteAccessSpecification(objectIdentifier=object_id(write.ref), listOfProperties=[item])


def _value_key(value: Any) -> tuple[str, str]:
    if isinstance(value, LightingCommand):
        return ("lighting-command", f"{value.targetLevel}/{value.fadeTime}/{value.priority}")
    return (type(value).__name__, str(value))


_encoded: dict[tuple[Any, ...], ConfirmedRequestPDU] = {}


def _pre_encoded(key: tuple[Any, ...], build: Callable[[], APCISequence], address: Address) -> ConfirmedRequestPDU:
    """The request as bacpypes3 puts it on the wire (a generic ConfirmedRequestPDU, which its
    stack sends without encoding again), encoded once per content and copied for each send."""
    template = _encoded.get(key)
    if template is None:
        if len(_encoded) >= ENCODED_CACHE_SIZE:
            _encoded.clear()
        template = _encoded[key] = build().encode()
    request = ConfirmedRequestPDU()
    request.update(template)
    request.pduDestination = address
    request.pduData = bytearray(template.pduData)
    return request


def wpm_request(writes: Sequence[Write], address: Address) -> ConfirmedRequestPDU:
    """A WritePropertyMultiple of ``writes``, encoded."""

    def build() -> APCISequence:
        specs = [_write_spec(write) for write in writes]
        return WritePropertyMultipleRequest(listOfWriteAccessSpecs=SequenceOf(WriteAccessSpecification)(specs))

    key = ("wpm", *((w.ref, w.prop, _value_key(w.value), w.priority) for w in writes))
    return _pre_encoded(key, build, address)


def wp_request(write: Write, address: Address) -> ConfirmedRequestPDU:
    """A WriteProperty of one write, encoded."""

    def build() -> APCISequence:
        request = WritePropertyRequest(
            objectIdentifier=object_id(write.ref),
            propertyIdentifier=write.prop,
            propertyValue=AnyValue(write.value),
        )
        if write.priority is not None:
            request.priority = write.priority
        return request

    return _pre_encoded(("wp", write.ref, write.prop, _value_key(write.value), write.priority), build, address)


Read = tuple[ObjectIdentifier, str]
"""(object, property) to read; ``priorityArray[10]`` reads one element of an array."""


@cache
def _reference(prop: str) -> PropertyReference:
    name, _, index = prop.partition("[")
    if index:
        return PropertyReference(propertyIdentifier=name, propertyArrayIndex=int(index.rstrip("]")))
    return PropertyReference(propertyIdentifier=name)


def rpm_request(reads: Sequence[Read], address: Address) -> ConfirmedRequestPDU:
    """A ReadPropertyMultiple of ``reads``, grouped by object, encoded."""

    def build() -> APCISequence:
        grouped: dict[ObjectIdentifier, list[str]] = {}
        for objid, prop in reads:
            grouped.setdefault(objid, []).append(prop)
        specs = [_read_spec(objid, tuple(props)) for objid, props in grouped.items()]
        return ReadPropertyMultipleRequest(listOfReadAccessSpecs=SequenceOf(ReadAccessSpecification)(specs))

    return _pre_encoded(("rpm", *reads), build, address)


def _read_spec(objid: ObjectIdentifier, props: tuple[str, ...]) -> ReadAccessSpecification:
    return ReadAccessSpecification(
        objectIdentifier=objid, listOfPropertyReferences=[_reference(p) for p in props]
    )


def decode_rpm(ack: ReadPropertyMultipleACK) -> dict[tuple[str, str], Any]:
    """Values by (``type,instance``, property as requested); a property the device refused maps
    to its ErrorType."""
    vendor = get_vendor_info(0)
    values: dict[tuple[str, str], Any] = {}
    for result in ack.listOfReadAccessResults:
        objid = result.objectIdentifier
        object_class = vendor.get_object_class(objid[0])
        key_obj = f"{objid[0]},{objid[1]}"
        for element in result.listOfResults:
            prop = element.propertyIdentifier
            name = prop.attr
            if element.propertyArrayIndex is not None:
                name = f"{name}[{element.propertyArrayIndex}]"
            read = element.readResult
            if read.propertyAccessError is not None:
                values[(key_obj, name)] = read.propertyAccessError
                continue
            prop_type = object_class.get_property_type(prop) if object_class else None
            if prop_type is None:
                continue
            if issubclass(prop_type, Array) and element.propertyArrayIndex is not None:
                prop_type = prop_type._subtype
            values[(key_obj, name)] = read.propertyValue.cast_out(
                prop_type, null=issubclass(prop_type, Atomic)
            )
    return values


def is_error(value: Any) -> bool:
    return isinstance(value, ErrorType)


def subscribe_request(process_id: int, objid: ObjectIdentifier, lifetime_s: int | None,
                      address: Address, confirmed: bool = False) -> SubscribeCOVRequest:
    """A SubscribeCOV; ``lifetime_s=None`` cancels the subscription."""
    request = SubscribeCOVRequest(
        subscriberProcessIdentifier=process_id, monitoredObjectIdentifier=objid, destination=address
    )
    if lifetime_s is not None:
        request.issueConfirmedNotifications = confirmed
        request.lifetime = lifetime_s
    return request


def priority_holder(priority_array: Sequence[Any]) -> tuple[int, Any] | None:
    """The highest priority (1-based) holding a value, and the value."""
    for index, slot in enumerate(priority_array):
        if slot.null is None:
            return index + 1, getattr(slot, slot._choice)
    return None


def slot_value(priority_array: Sequence[Any], priority: int) -> Any:
    slot = priority_array[priority - 1]
    return None if slot.null is not None else getattr(slot, slot._choice)
