"""The values the core and every driver share: what a channel should do, what a controller
reports, what a batch compiles to. Pure data: no I/O, no imports from the rest of the project."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

ChannelId = str
"""A channel's id, unique within its controller (``ControllerConfig.channels[i].id``)."""


# --------------------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class Colour:
    """Colour of a channel: RGB (0-255 each) or a correlated colour temperature in kelvin."""

    rgb: tuple[int, int, int] | None = None
    cct_k: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelState:
    """What a channel should do. ``level`` is a percentage (0-100) of full output; ``on=False``
    means the circuit is de-energised whatever the level. ``fade_s`` is the transition time."""

    on: bool
    level: float = 100.0
    colour: Colour | None = None
    fade_s: float = 0.0

    @property
    def output(self) -> float:
        """Effective output in percent: 0 when off."""
        return self.level if self.on else 0.0


OFF = ChannelState(on=False, level=0.0)


class FaultKind(StrEnum):
    """Fault vocabulary shared by drivers (reported flags) and the fault rules of the core."""

    COMM_LOST = "comm_lost"
    BREAKER_TRIP = "breaker_trip"
    LAMP_FAILURE = "lamp_failure"
    GEAR_FAILURE = "gear_failure"
    STUCK_CONTACTOR = "stuck_contactor"
    DOOR_OPEN = "door_open"
    CABLE_THEFT = "cable_theft"
    PHASE_LOSS = "phase_loss"
    OVER_VOLTAGE = "over_voltage"
    UNDER_VOLTAGE = "under_voltage"
    OVER_CURRENT = "over_current"
    LEAKAGE = "leakage"
    DEVICE_FAULT = "device_fault"
    SUPPLY_LOSS = "supply_loss"
    """Every phase of a cabinet dead (found by the fault rules; a site's cabinets together: one)."""
    UNCONFIRMED = "unconfirmed"
    """A command the controller did not confirm by the convergence deadline (found by the rules)."""


@dataclass(frozen=True, slots=True)
class ChannelReading:
    """What a controller reports for one channel. ``None`` means the device does not say.

    ``level`` is the level the device holds as its setpoint (what confirmation compares with);
    ``held_by`` names another party that holds the output above us (e.g. a BACnet owner's manual
    override at priority 8): that is shown to operators, and it is not a fault.
    ``released`` says whether the centre's own command is withdrawn (BACnet: our slot of the
    priority array is NULL), so that the owner's control runs the channel; ``on`` and ``level`` are
    then what the owner's control does. None where the protocol has no such notion.
    """

    on: bool | None = None
    level: float | None = None
    colour: Colour | None = None
    power_w: float | None = None
    faults: frozenset[FaultKind] = frozenset()
    held_by: str | None = None
    released: bool | None = None


@dataclass(frozen=True, slots=True)
class ControllerReading:
    """One observation of a controller. ``at`` is ``time.time()`` when the reading completed."""

    at: float
    channels: Mapping[ChannelId, ChannelReading]
    power_w: float | None = None
    energy_kwh: float | None = None
    faults: frozenset[FaultKind] = frozenset()
    measurements: Mapping[str, float] = field(default_factory=dict)
    """Other figures the device gives, e.g. ``voltage_l1_v``, ``current_l2_a``."""
    complete: bool = True
    """False for a reading that asked less than a poll does (a read-back of levels, a BACnet COV
    confirmation): its fault flags, meters and measurements say nothing about what it did not ask,
    and an empty fault set there is no sign that a fault has gone."""


@dataclass(frozen=True, slots=True)
class PlannedOperation:
    """One protocol operation a batch compiles to, for ``scene explain`` and request counting."""

    kind: str
    """The protocol's own name for it: ``write_coils``, ``Write``, ``DAPC broadcast``, ``WPM``."""
    target: str
    """Registers, nodes, DALI address or objects it touches, as a person would read them."""
    channels: tuple[ChannelId, ...]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    operations: int
    """Protocol requests actually sent."""
    rejected: Mapping[ChannelId, str] = field(default_factory=dict)
    """Channels the device refused, with its reason."""


class LinkState(StrEnum):
    """Whether the centre can reach a controller, as its supervisor last found."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"
