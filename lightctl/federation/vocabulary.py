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
from typing import NamedTuple, cast

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


class ChannelFacts(NamedTuple):
    """What the city is told of one channel: as last read, and what the district wants of it.
    (Tuples: a district makes one per channel of every controller that changes.)"""

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


_CHANNEL_FIELDS = (
    (0, ON, DataType.Boolean), (1, LEVEL, DataType.Float), (2, CHANNEL_POWER, DataType.Double),
    (3, RELEASED_NAME, DataType.Boolean), (4, HELD_BY, DataType.String), (5, DESIRED, DataType.String),
)
_POWER = 2


class ControllerFacts(NamedTuple):
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
        """Every metric with its data type (a birth), or the values that changed since
        ``since`` (data: Sparkplug sends the type at birth only); a reading's figures (power,
        energy, faults) only ``with_reading`` (they change with every poll: sent at a pace)."""
        if since is None:
            out = [Metric(n, t, cast(Value, self[i])) for i, n, t in _CONTROLLER_FIELDS]
            for channel, facts in self.channels.items():
                out += [Metric(channel_metric(channel, n), t, facts[i]) for i, n, t in _CHANNEL_FIELDS]
            return out
        last = len(_CONTROLLER_FIELDS) if with_reading else _FIRST_READING_FIELD
        out = [Metric(n, 0, cast(Value, self[i])) for i, n, _ in _CONTROLLER_FIELDS[:last] if self[i] != since[i]]
        for channel, facts in self.channels.items():
            before = since.channels.get(channel)
            if before is None:
                out += [Metric(channel_metric(channel, n), t, facts[i]) for i, n, t in _CHANNEL_FIELDS]
            elif facts != before:
                out += [
                    Metric(channel_metric(channel, n), 0, facts[i]) for i, n, _ in _CHANNEL_FIELDS
                    if facts[i] != before[i] and (with_reading or i != _POWER)
                ]
        return out

    def keeping_reading_of(self, before: ControllerFacts) -> ControllerFacts:
        """These facts with the reading's figures as ``before`` had them (as last sent)."""
        channels = {
            ch: f._replace(power_w=before.channels[ch].power_w) if ch in before.channels else f
            for ch, f in self.channels.items()
        }
        return self._replace(power_w=before.power_w, energy_kwh=before.energy_kwh, faults=before.faults,
                             read_at_ms=before.read_at_ms, channels=channels)


_CONTROLLER_FIELDS = (
    (0, LINK, DataType.String), (1, LINK_ERROR, DataType.String), (2, LINK_SINCE, DataType.DateTime),
    (3, PENDING, DataType.UInt32), (5, POWER, DataType.Double), (6, ENERGY, DataType.Double),
    (7, FAULTS, DataType.String), (8, READ_AT, DataType.DateTime),
)
_FIRST_READING_FIELD = 4


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
