"""The driver boundary: the only things the core and a protocol driver share.

Rules every driver follows (the core relies on them):

* Every network await has a timeout (the controller's ``timeout_s`` unless a protocol constant is
  stricter). A call that times out raises :class:`ControllerTimeout`; it never hangs.
* The core never sees a library's exception. Drivers raise the subclasses of :class:`DriverError`
  below, always naming the controller (and the node/object/register when there is one).
* ``connect()`` either leaves a usable session or raises and leaves no state behind; ``close()`` is
  idempotent and never raises. ``apply()`` and ``read()`` connect on demand, so after a lost link the
  next call reconnects (the reconnect *policy*, with backoff, is the core's: see lightctl.reconnect).
* ``apply()`` compiles the batch into the fewest protocol operations (``plan()`` shows them without
  sending) and returns once the device has accepted them; it does not read back. Confirmation is a
  separate ``read()``, so that the core decides when and how often to read.
* A device that accepts some channels and refuses others raises nothing: the refused channels are
  listed in :attr:`ApplyResult.rejected` with the reason.
* ``prepare()`` (optional) splits ``apply()`` for a show's beat: everything before the first write
  is done shortly before the beat, holding nothing, and :meth:`PreparedSend.fire` then puts the
  batch's first request(s) on the wire synchronously, so that many controllers' sends leave in one
  tight pass of the event loop. ``fire`` either sends and returns the batch's future, or sends
  nothing and returns None; it does not raise.
* ``pause_pushes()`` (optional) stops what the device pushes by itself while a show drives it.
* ``release()`` (optional, :attr:`Driver.releases`) hands channels back to their owner's own
  control under the same rules as ``apply()``; a read-back then reports
  :attr:`ChannelReading.released`.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from pydantic import BaseModel

    from lightctl.config import ControllerConfig

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


class PreparedSend(Protocol):
    """A batch made ready to send by :meth:`Driver.prepare`."""

    def fire(self) -> asyncio.Future[ApplyResult] | None:
        """Put the batch's first request(s) on the wire now, before returning, and return a
        future that completes the batch as ``apply()`` would (its result, or its errors). The
        future is already running: whatever the driver holds for the batch (a connection's turn,
        a bus line) is released when it is done, whether or not anyone awaits it, and cancelling
        it abandons the batch as a timeout does. Returns None, having sent nothing, when what was
        prepared no longer holds (the session was lost, the connection or line is busy); the
        caller then sends with ``apply()``."""
        ...


# --------------------------------------------------------------------------- errors


class DriverError(Exception):
    """Base of every error a driver raises. ``kind`` is the stable name used in results and JSON."""

    kind: ClassVar[str] = "error"

    def __init__(self, controller_id: str, detail: str) -> None:
        super().__init__(f"{controller_id}: {detail}")
        self.controller_id = controller_id
        self.detail = detail


class ControllerUnreachable(DriverError):
    """No session could be made (refused, no route, TLS/security handshake failed, ...)."""

    kind = "unreachable"


class ControllerTimeout(DriverError):
    """The device did not answer in time."""

    kind = "timeout"


class RequestRejected(DriverError):
    """The device answered and refused: an exception reply, a bad status code, a BACnet error."""

    kind = "rejected"


class AccessDenied(RequestRejected):
    """Refused for lack of rights (wrong password, untrusted certificate, read-only point)."""

    kind = "access_denied"


class ProtocolFault(DriverError):
    """The reply made no sense (malformed frame, wrong length, framing error on the bus)."""

    kind = "protocol"


# --------------------------------------------------------------------------- the driver


class Driver(abc.ABC):
    """One driver instance per controller. Subclasses set :attr:`level_tolerance` to the level
    resolution of their protocol, in percent, so that confirmation compares like with like."""

    level_tolerance: ClassVar[float] = 0.5

    def __init__(self, controller: ControllerConfig) -> None:
        self.controller = controller

    @property
    def controller_id(self) -> str:
        return self.controller.id

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def plan(self, states: Mapping[ChannelId, ChannelState]) -> Sequence[PlannedOperation]:
        """The operations ``apply(states)`` would send, without sending anything."""

    @abc.abstractmethod
    async def apply(self, states: Mapping[ChannelId, ChannelState]) -> ApplyResult: ...

    def prepare(self, states: Mapping[ChannelId, ChannelState]) -> PreparedSend | None:
        """Do, ahead of a show's beat, all of ``apply(states)``'s work that comes before its first
        write (compile, encode, find the session), so that at the beat ``fire()`` costs little
        more than a socket write. None where the driver has no such split or no warm session:
        the caller then awaits ``apply()`` at the beat."""
        return None

    @abc.abstractmethod
    async def read(self, channels: Collection[ChannelId] | None = None) -> ControllerReading:
        """Observe the device. ``None`` is a full poll (levels, relays, power, energy, faults).
        With a collection of channels this is a confirmation read-back: it must report at least
        ``on`` and ``level`` of those channels, as cheaply as the protocol allows (one register
        block, one Read service call, a query of the changed gear only)."""

    releases: ClassVar[bool] = False
    """True where the devices have an owner to hand channels back to (BACnet: the building's BMS)."""

    async def release(self, channels: Collection[ChannelId]) -> ApplyResult:
        """Hand these channels back to their owner: the centre withdraws its command and the
        owner's own control takes over (BACnet: NULL at the centre's priority). Returns like
        ``apply()``, without reading back. A driver whose devices have nobody to hand back to keeps
        :attr:`releases` False and refuses every channel here rather than pretend."""
        reason = f"{self.controller.protocol} has no owner to hand channels back to"
        return ApplyResult(0, dict.fromkeys(channels, reason))

    async def pause_pushes(self, paused: bool) -> None:
        """Stop, or resume, the readings the device pushes by itself (OPC UA data changes) while a
        show drives the controller: a burst of them to decode holds the event loop when a beat is
        due, and the show's end confirms by read-back anyway. Never raises (a failure is logged,
        and the pushes simply go on). The default has nothing to pause."""
        return None

    def subscribe(self, on_reading: Callable[[ControllerReading], None]) -> bool:
        """Ask for pushed readings (OPC UA data changes, BACnet COV). Returns False when the
        driver only polls; the core then polls on ``poll_s``. Pushes start after ``connect``."""
        return False


# --------------------------------------------------------------------------- plugins


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """A problem a plugin finds in a controller's config. ``path`` is relative to the controller
    mapping (e.g. ``("channels", 3, "point")``) so the core can name the file and line."""

    path: tuple[str | int, ...]
    message: str


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault injected into a simulator. ``kind`` is one of the simulator's ``fault_kinds``;
    common ones: ``offline``, ``slow`` (value = seconds of delay), ``error`` (exception replies),
    ``breaker_trip``, ``lamp_failure`` (value = fraction failed), ``stuck_contactor``."""

    kind: str
    channel: ChannelId | None = None
    value: float | None = None


class SimulatorHost(Protocol):
    """Simulated devices for some controllers of one protocol, in the current process."""

    fault_kinds: frozenset[str]

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    def endpoints(self) -> Mapping[str, Mapping[str, Any]]:
        """Per controller id, the settings to reach its simulated device (e.g. ``{"port": 41233}``)
        once started; merged over the controller's settings by tests and benchmarks."""
        ...

    def inject(self, controller_id: str, fault: Fault) -> None: ...
    def clear(self, controller_id: str, kind: str | None = None) -> None: ...

    def request_count(self, controller_id: str) -> int:
        """Protocol requests (or frames) this device has received since start: tests use it to
        check coalescing."""
        ...

    def write_times(self, controller_id: str) -> Sequence[float]:
        """``time.monotonic()`` at which each request that changes outputs arrived (the last
        thousands). The monotonic clock is system-wide, so instants from simulators in other
        processes compare: shows and ``bench show`` measure a cue's spread with it."""
        ...


class DriverPlugin(Protocol):
    """What ``drivers/<protocol>/__init__.py`` exports as ``PLUGIN``; drivers.registry finds it."""

    protocol: str
    settings_model: type[BaseModel]
    """Pydantic model of the protocol's own controller keys (host, port, unit, security, ...)."""

    def profile_names(self) -> Sequence[str]: ...

    def validate_controller(self, controller: ControllerConfig) -> list[ConfigProblem]:
        """Cross-checks against the profile: unknown profile, points the profile does not have,
        two channels on one point, overlapping registers."""
        ...

    def endpoint_key(self, controller: ControllerConfig) -> str:
        """Identity of the field endpoint, so two controllers on one address are refused."""
        ...

    def create_driver(self, controller: ControllerConfig) -> Driver: ...

    # Optional: ``create_floor_client(controller, states) -> FloorClient`` (see below), used by
    # ``lightctl bench`` to time the same requests, pre-encoded, over plain sockets; and
    # ``simulator_weight: float`` (default 1.0), the CPU one simulated controller costs relative
    # to a Modbus cabinet, by which the benchmark sizes its simulator processes.

    def create_simulator(
        self, controllers: Sequence[ControllerConfig], *, any_port: bool = False
    ) -> SimulatorHost:
        """Simulators for these controllers. ``any_port`` binds port 0 (tests, benchmarks)."""
        ...


class FloorClient(Protocol):
    """The benchmark's floor for one controller: the requests the driver sends for a batch and its
    read-back, encoded before timing starts and sent over plain asyncio sockets."""

    async def connect(self) -> None: ...
    async def run(self) -> int:
        """Send every pre-encoded request, await every reply; return the number of requests."""
        ...
    async def close(self) -> None: ...
