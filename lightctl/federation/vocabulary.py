"""The metrics a district publishes and the commands the city sends, by name: the one place
where lightctl's state becomes Sparkplug metrics and back.

Node (the district): ``bdSeq``, ``Node Control/Rebirth``, ``District/Inventory`` (its district,
sites, tags, scenes and shows, and its controllers' ids, as JSON), ``District/Overrides`` (the
layers in force, JSON), and each event of its outbox as ``Outbox/Id`` with ``Event/<kind>``.
Device (a controller): ``Controller/Config`` (at birth), ``Link/State``, ``Link/Error``,
``Link/Since``, ``Power/Watts``, ``Energy/kWh``, ``Faults``, ``Reading/At``,
``Channels Pending``, and per channel ``Channels/<id>/On``, ``Level``, ``Power``, ``Released``,
``Held By``, ``Desired`` (``off``, ``on``, ``on <level>`` or ``released``).
Commands to a node (NCMD): ``Node Control/Rebirth``, ``Outbox/Acknowledged``, ``Command/Request``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lightctl.federation.schema import DataType
from lightctl.federation.sparkplug import Metric, Value
from lightctl.model.desired import RELEASED, Desired, Released
from lightctl.model.values import ChannelReading, ChannelState, ControllerReading

BD_SEQ = "bdSeq"
REBIRTH = "Node Control/Rebirth"
INVENTORY = "District/Inventory"
OVERRIDES = "District/Overrides"
OUTBOX_ID = "Outbox/Id"
EVENT = "Event/"
ACKNOWLEDGED = "Outbox/Acknowledged"
REQUEST = "Command/Request"

CONFIG = "Controller/Config"
LINK = "Link/State"
LINK_ERROR = "Link/Error"
LINK_SINCE = "Link/Since"
POWER = "Power/Watts"
ENERGY = "Energy/kWh"
FAULTS = "Faults"
READ_AT = "Reading/At"
PENDING = "Channels Pending"
CHANNELS = "Channels/"

ON, LEVEL, CHANNEL_POWER, RELEASED_NAME, HELD_BY, DESIRED = "On", "Level", "Power", "Released", "Held By", "Desired"


def channel_metric(channel: str, what: str) -> str:
    return f"{CHANNELS}{channel}/{what}"


def desired_text(desired: Desired | None) -> str | None:
    if desired is None:
        return None
    if isinstance(desired, Released):
        return "released"
    if not desired.on:
        return "off"
    return "on" if desired.level == 100.0 else f"on {desired.level:g}"


def parse_desired(text: str | None) -> Desired | None:
    if text is None:
        return None
    if text == "released":
        return RELEASED
    if text == "off":
        return ChannelState(on=False, level=0.0)
    if text == "on":
        return ChannelState(on=True)
    if text.startswith("on "):
        return ChannelState(on=True, level=float(text[3:]))
    raise ValueError(f"bad desired state {text!r}")


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """What the city is told of one channel: as last read, and what the district wants of it."""

    on: bool | None
    level: float | None
    power_w: float | None
    released: bool | None
    held_by: str | None
    desired: str | None

    @classmethod
    def of(cls, reading: ChannelReading | None, desired: Desired | None) -> ChannelFacts:
        if reading is None:
            return cls(None, None, None, None, None, desired_text(desired))
        return cls(reading.on, reading.level, reading.power_w, reading.released, reading.held_by, desired_text(desired))

    def metrics(self, channel: str, since: ChannelFacts | None = None) -> list[Metric]:
        """Its metrics, or only those that differ from ``since``."""
        out = []
        fields: tuple[tuple[str, int, Value, Value], ...] = (
            (ON, DataType.Boolean, self.on, None if since is None else since.on),
            (LEVEL, DataType.Float, self.level, None if since is None else since.level),
            (CHANNEL_POWER, DataType.Double, self.power_w, None if since is None else since.power_w),
            (RELEASED_NAME, DataType.Boolean, self.released, None if since is None else since.released),
            (HELD_BY, DataType.String, self.held_by, None if since is None else since.held_by),
            (DESIRED, DataType.String, self.desired, None if since is None else since.desired),
        )
        for what, datatype, value, before in fields:
            if since is None or value != before:
                out.append(Metric(channel_metric(channel, what), datatype, value))
        return out

    def without_power(self) -> ChannelFacts:
        return ChannelFacts(self.on, self.level, None, self.released, self.held_by, self.desired)


@dataclass(frozen=True, slots=True)
class ControllerFacts:
    """What the city is told of one controller (a DBIRTH says all of it, a DDATA what changed)."""

    link: str
    link_error: str | None
    link_since_ms: int
    pending: int
    channels: Mapping[str, ChannelFacts]
    power_w: float | None = None
    energy_kwh: float | None = None
    faults: str | None = None
    read_at_ms: int | None = None

    def metrics(self, since: ControllerFacts | None = None, *, with_reading: bool = True) -> list[Metric]:
        """Every metric, or those that changed since ``since``; a reading's figures (power,
        energy, faults) only ``with_reading`` (they change with every poll: sent at a pace)."""
        fields: list[tuple[str, int, Value, Value]] = [
            (LINK, DataType.String, self.link, None if since is None else since.link),
            (LINK_ERROR, DataType.String, self.link_error, None if since is None else since.link_error),
            (LINK_SINCE, DataType.DateTime, self.link_since_ms, None if since is None else since.link_since_ms),
            (PENDING, DataType.UInt32, self.pending, None if since is None else since.pending),
        ]
        if with_reading:
            fields += [
                (POWER, DataType.Double, self.power_w, None if since is None else since.power_w),
                (ENERGY, DataType.Double, self.energy_kwh, None if since is None else since.energy_kwh),
                (FAULTS, DataType.String, self.faults, None if since is None else since.faults),
                (READ_AT, DataType.DateTime, self.read_at_ms, None if since is None else since.read_at_ms),
            ]
        out = [Metric(name, datatype, value) for name, datatype, value, before in fields if since is None or value != before]
        for channel, facts in self.channels.items():
            before_channel = None if since is None else since.channels.get(channel)
            if before_channel is None:
                out += facts.metrics(channel)
            elif with_reading:
                out += facts.metrics(channel, before_channel)
            else:
                out += facts.without_power().metrics(channel, before_channel.without_power())
        return out


def reading_figures(reading: ControllerReading | None) -> tuple[float | None, float | None, str | None, int | None]:
    if reading is None:
        return None, None, None, None
    faults = ",".join(sorted(reading.faults)) or None
    return reading.power_w, reading.energy_kwh, faults, int(reading.at * 1000)


def split_channel_metric(name: str) -> tuple[str, str] | None:
    """``Channels/<id>/<what>`` as (channel id, what); None for any other name."""
    if not name.startswith(CHANNELS):
        return None
    channel, sep, what = name[len(CHANNELS):].partition("/")
    return (channel, what) if sep else None


def events_of(metrics: Iterable[Metric]) -> tuple[int | None, list[tuple[str, str]]]:
    """An NDATA's outbox id and its events (kind, JSON body)."""
    outbox_id: int | None = None
    events = []
    for metric in metrics:
        if metric.name == OUTBOX_ID and isinstance(metric.value, int):
            outbox_id = metric.value
        elif metric.name.startswith(EVENT) and isinstance(metric.value, str):
            events.append((metric.name[len(EVENT):], metric.value))
    return outbox_id, events
