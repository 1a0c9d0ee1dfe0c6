"""Sparkplug B 3.0 as lightctl speaks it: topics, payloads (typed values over
:mod:`lightctl.federation.schema`), the primary host's STATE, and sequence numbers.

Topics: ``spBv1.0/<group>/<type>/<edge node>[/<device>]`` for NBIRTH, NDEATH, NDATA, NCMD,
DBIRTH, DDEATH, DDATA, DCMD; ``spBv1.0/STATE/<host id>`` for the primary host. A district daemon is
an edge node named after its district, each of its controllers a device.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from lightctl.federation.schema import DataType, PayloadMessage

NAMESPACE = "spBv1.0"
STATE = "STATE"


class MessageType(StrEnum):
    NBIRTH = "NBIRTH"
    NDEATH = "NDEATH"
    NDATA = "NDATA"
    NCMD = "NCMD"
    DBIRTH = "DBIRTH"
    DDEATH = "DDEATH"
    DDATA = "DDATA"
    DCMD = "DCMD"


_INTEGERS = {DataType.Int8, DataType.Int16, DataType.Int32, DataType.UInt8, DataType.UInt16, DataType.UInt32}
_LONGS = {DataType.Int64, DataType.UInt64, DataType.DateTime}
_SIGNED_BITS: dict[int, int] = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32, DataType.Int64: 64}

Value = bool | int | float | str | bytes | None


class SparkplugError(ValueError):
    """A topic or payload that does not follow Sparkplug B (named, never a crash)."""


@dataclass(frozen=True, slots=True)
class Topic:
    kind: MessageType
    group: str
    node: str
    device: str | None = None

    def __str__(self) -> str:
        tail = f"/{self.device}" if self.device is not None else ""
        return f"{NAMESPACE}/{self.group}/{self.kind.value}/{self.node}{tail}"

    @classmethod
    def parse(cls, text: str) -> Topic:
        parts = text.split("/")
        if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
            raise SparkplugError(f"not a Sparkplug B edge topic: {text!r}")
        try:
            kind = MessageType(parts[2])
        except ValueError:
            raise SparkplugError(f"unknown Sparkplug message type {parts[2]!r} in {text!r}") from None
        device = parts[4] if len(parts) == 5 else None
        if (device is None) == kind.value.startswith("D"):
            raise SparkplugError(f"{kind.value} {'needs' if device is None else 'takes no'} device id: {text!r}")
        return cls(kind, parts[1], parts[3], device)


def state_topic(host: str) -> str:
    return f"{NAMESPACE}/{STATE}/{host}"


def state_payload(online: bool, timestamp_ms: int) -> bytes:
    """The primary host's STATE (Sparkplug 3.0: JSON, published retained with QoS 1)."""
    return json.dumps({"online": online, "timestamp": timestamp_ms}, separators=(",", ":")).encode()


def parse_state(payload: bytes) -> tuple[bool, int]:
    try:
        data = json.loads(payload)
        return bool(data["online"]), int(data["timestamp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SparkplugError(f"bad STATE payload {payload[:80]!r}: {exc}") from None


class Metric(NamedTuple):
    name: str
    datatype: int
    """The Sparkplug data type; 0 (Unknown) leaves it out of the message, as Sparkplug asks of
    NDATA and DDATA (the type is the birth's). The value is then taken as the message carries it."""
    value: Value
    timestamp: int | None = None
    historical: bool = False
    """Sent late (kept while the broker or the host was unreachable): not the value of now."""


class Payload(NamedTuple):
    timestamp: int
    metrics: tuple[Metric, ...] = ()
    seq: int | None = None
    uuid: str | None = None
    body: bytes | None = None

    def by_name(self) -> dict[str, Metric]:
        return {m.name: m for m in self.metrics}


def _set_value(target: Any, metric: Metric) -> None:
    value, kind = metric.value, metric.datatype
    if value is None:
        target.is_null = True
    elif kind == DataType.Unknown:  # data: typed by the value (Sparkplug: the type is the birth's)
        _set_by_value(target, metric)
    elif kind in _INTEGERS:
        target.int_value = int(value) & 0xFFFFFFFF  # (the spec carries signed values in two's complement)
    elif kind in _LONGS:
        target.long_value = int(value) & 0xFFFFFFFFFFFFFFFF
    elif kind == DataType.Float:
        target.float_value = float(value)
    elif kind == DataType.Double:
        target.double_value = float(value)
    elif kind == DataType.Boolean:
        target.boolean_value = bool(value)
    elif kind in (DataType.String, DataType.Text, DataType.UUID):
        target.string_value = str(value)
    elif kind in (DataType.Bytes, DataType.File):
        target.bytes_value = bytes(value) if isinstance(value, bytes | bytearray) else str(value).encode()
    else:
        raise SparkplugError(f"metric {metric.name!r}: data type {kind} is not one lightctl sends")


def _set_by_value(target: Any, metric: Metric) -> None:
    value = metric.value
    if isinstance(value, bool):
        target.boolean_value = value
    elif isinstance(value, int):
        target.long_value = value & 0xFFFFFFFFFFFFFFFF
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    else:
        raise SparkplugError(f"metric {metric.name!r}: a value of type {type(value).__name__} has no Sparkplug type")


def _signed(value: int, kind: int) -> int:
    """A signed type's value from its two's complement (an Int8 of -5 comes as 0xFFFFFFFB)."""
    bits = _SIGNED_BITS.get(kind)
    if bits is None:
        return value
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _get_value(source: Any) -> Value:
    if source.is_null:
        return None
    which = source.WhichOneof("value")
    if which is None:
        return None
    value = getattr(source, which)
    if which in ("int_value", "long_value"):
        return _signed(int(value), source.datatype)
    if which in ("dataset_value", "template_value"):
        return None  # not one lightctl reads; kept by the host as unknown
    return value  # type: ignore[no-any-return]


def encode(payload: Payload) -> bytes:
    message = PayloadMessage(timestamp=payload.timestamp)
    if payload.seq is not None:
        message.seq = payload.seq
    if payload.uuid is not None:
        message.uuid = payload.uuid
    if payload.body is not None:
        message.body = payload.body
    for metric in payload.metrics:
        target = message.metrics.add(name=metric.name)
        if metric.datatype:
            target.datatype = metric.datatype
        if metric.timestamp is not None:
            target.timestamp = metric.timestamp
        if metric.historical:
            target.is_historical = True
        _set_value(target, metric)
    return bytes(message.SerializeToString())


def decode(data: bytes) -> Payload:
    message = PayloadMessage()
    try:
        message.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError, or anything its parser raises on garbage
        raise SparkplugError(f"not a Sparkplug B payload ({len(data)} bytes): {exc}") from None
    metrics = tuple(
        Metric(
            m.name, m.datatype, _get_value(m),
            m.timestamp if m.HasField("timestamp") else None,
            m.is_historical,
        )
        for m in message.metrics
    )
    return Payload(
        message.timestamp,
        metrics,
        message.seq if message.HasField("seq") else None,
        message.uuid if message.HasField("uuid") else None,
        message.body if message.HasField("body") else None,
    )


@dataclass
class Sequence256:
    """A node's message sequence number: 0 at NBIRTH, then +1 per message, wrapping after 255."""

    value: int = -1

    def birth(self) -> int:
        self.value = 0
        return 0

    def next(self) -> int:
        self.value = (self.value + 1) % 256
        return self.value


def follows(previous: int, seq: int) -> bool:
    return seq == (previous + 1) % 256


@dataclass
class MetricSet:
    """Metrics built up by name for one payload (the last value of a name wins)."""

    items: dict[str, Metric] = field(default_factory=dict)

    def add(self, name: str, datatype: int, value: Value, **extra: Any) -> None:
        self.items[name] = Metric(name, datatype, value, **extra)

    def extend(self, metrics: Iterable[Metric]) -> None:
        for metric in metrics:
            self.items[metric.name] = metric

    def metrics(self) -> Sequence[Metric]:
        return tuple(self.items.values())
