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
    ReadPropertyACK,
    ReadPropertyMultipleACK,
    ReadPropertyMultipleRequest,
    ReadPropertyRequest,
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

from drivers.bacnet.bacpypes3_internals import chosen, element_type
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


def rp_request(read: Read, address: Address) -> ConfirmedRequestPDU:
    """A ReadProperty of one property (for a device without ReadPropertyMultiple), encoded."""
    objid, prop = read

    def build() -> APCISequence:
        reference = _reference(prop)
        request = ReadPropertyRequest(objectIdentifier=objid, propertyIdentifier=reference.propertyIdentifier)
        if reference.propertyArrayIndex is not None:
            request.propertyArrayIndex = reference.propertyArrayIndex
        return request

    return _pre_encoded(("rp", objid, prop), build, address)


def _value(objid: ObjectIdentifier, prop: PropertyIdentifier, index: int | None, value: AnyValue) -> Any:
    """A property's value as the type the standard gives it (None: a property we cannot type)."""
    object_class = get_vendor_info(0).get_object_class(objid[0])
    prop_type = object_class.get_property_type(prop) if object_class else None
    if prop_type is None:
        return None
    if issubclass(prop_type, Array) and index is not None:
        prop_type = element_type(prop_type)
    return value.cast_out(prop_type, null=issubclass(prop_type, Atomic))


def _key(objid: ObjectIdentifier, prop: PropertyIdentifier, index: int | None) -> tuple[str, str]:
    name = prop.attr if index is None else f"{prop.attr}[{index}]"
    return f"{objid[0]},{objid[1]}", name


def decode_rpm(ack: ReadPropertyMultipleACK) -> dict[tuple[str, str], Any]:
    """Values by (``type,instance``, property as requested); a property the device refused maps
    to its ErrorType."""
    values: dict[tuple[str, str], Any] = {}
    for result in ack.listOfReadAccessResults:
        objid = result.objectIdentifier
        for element in result.listOfResults:
            key = _key(objid, element.propertyIdentifier, element.propertyArrayIndex)
            read = element.readResult
            if read.propertyAccessError is not None:
                values[key] = read.propertyAccessError
                continue
            value = _value(objid, element.propertyIdentifier, element.propertyArrayIndex, read.propertyValue)
            if value is not None:
                values[key] = value
    return values


def decode_rp(ack: ReadPropertyACK) -> dict[tuple[str, str], Any]:
    """A ReadProperty ack as ``decode_rpm`` gives values."""
    objid, prop, index = ack.objectIdentifier, ack.propertyIdentifier, ack.propertyArrayIndex
    value = _value(objid, prop, index, ack.propertyValue)
    return {} if value is None else {_key(objid, prop, index): value}


def access_error(error_class: Any, error_code: Any) -> ErrorType:
    """A refused ReadProperty as the ErrorType a ReadPropertyMultiple carries for that property."""
    return ErrorType(errorClass=error_class, errorCode=error_code)


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
            return index + 1, chosen(slot)
    return None


def slot_value(priority_array: Sequence[Any], priority: int) -> Any:
    slot = priority_array[priority - 1]
    return None if slot.null is not None else chosen(slot)
