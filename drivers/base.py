"""The driver boundary: the only things the core and a protocol driver share.

Rules every driver follows (the core relies on them):

* Every network await has a timeout (the controller's ``timeout_s`` unless a protocol constant is
  stricter). A call that times out raises :class:`ControllerTimeout`; it never hangs.
* The core never sees a library's exception. Drivers raise the subclasses of :class:`DriverError`
  below, always naming the controller (and the node/object/register when there is one).
* ``connect()`` either leaves a usable session or raises and leaves no state behind; ``close()`` is
  idempotent and never raises. ``apply()`` and ``read()`` connect on demand, so after a lost link the
  next call reconnects (the reconnect *policy*, with backoff, is the core's: see lightctl.reconcile.reconnect).
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
* ``release()`` (optional: a plugin whose drivers have it declares the ``release`` capability)
  hands channels back to their owner's own
  control under the same rules as ``apply()``; a read-back then reports
  :attr:`ChannelReading.released`.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from lightctl.model.installation import ControllerConfig
from lightctl.model.values import (
    ApplyResult,
    ChannelId,
    ChannelState,
    ControllerReading,
    PlannedOperation,
)

SettingsT = TypeVar("SettingsT", bound=BaseModel)
SentT = TypeVar("SentT")


def settings_of(controller: ControllerConfig, model: type[SettingsT]) -> SettingsT:
    """A controller's protocol settings as its protocol's model: the config loader has already
    validated them into it; a dict (a controller built by hand in a test) is validated here."""
    settings = controller.settings
    if isinstance(settings, model):
        return settings
    return model.model_validate(settings or {})

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


# --------------------------------------------------------------------------- a show's beat: turns


def try_acquire(lock: asyncio.Lock | asyncio.Semaphore) -> bool:
    """Acquire ``lock`` now if it is free and nobody waits for it; False, changing nothing, if not.

    An uncontended ``acquire()`` completes without suspending, so its coroutine is run by hand
    here for one step; one that would have to wait is closed, which withdraws its place in the
    queue."""
    if lock.locked():
        return False
    attempt = lock.acquire()
    try:
        attempt.send(None)
    except StopIteration:
        return True
    attempt.close()
    return False


class Turn(Protocol):
    """Something a send holds while it is on the wire: a connection's turn, a DALI line, one of a
    device's concurrent requests."""

    def try_take(self) -> bool:
        """Take it now, without waiting, or return False having changed nothing."""
        ...

    def give_back(self) -> None: ...


@dataclass(eq=False, slots=True)
class LockTurn:
    """An asyncio lock or semaphore as a :class:`Turn`."""

    lock: asyncio.Lock | asyncio.Semaphore

    def try_take(self) -> bool:
        return try_acquire(self.lock)

    def give_back(self) -> None:
        self.lock.release()


class HeldTurns:
    """The turns a fired send holds. Each is given back once: early by the send itself (a DALI
    line whose frames are done), or all that remain when the send ends, however it ends."""

    __slots__ = ("_held",)

    def __init__(self, turns: Sequence[Turn]) -> None:
        self._held = list(turns)

    def give_back(self, turn: Turn | None = None) -> None:
        """Give back one turn (if still held), or every turn still held."""
        if turn is None:
            held, self._held = self._held, []
            for each in reversed(held):
                each.give_back()
        elif turn in self._held:
            self._held.remove(turn)
            turn.give_back()

    def __contains__(self, turn: object) -> bool:
        return turn in self._held


def fire_with_turns(
    turns: Sequence[Turn],
    send_first: Callable[[], SentT | None],
    complete: Callable[[SentT, HeldTurns], Awaitable[ApplyResult]],
    abandon: Callable[[SentT], None],
) -> asyncio.Future[ApplyResult] | None:
    """The beat's rule for every driver's :meth:`PreparedSend.fire`, in one place.

    Every turn is taken now, without waiting, or none: a busy one declines the fire, the turns
    already taken are given back and nothing is sent (None). ``send_first`` then puts the
    batch's first request(s) on the wire before this returns; it returns what it sent, or None
    when the prepared send no longer holds (nothing sent: turns given back, None returned). If
    it raises, the turns are given back and the error is raised (the engine logs it and sends the
    cue the ordinary way). Otherwise the returned task runs ``complete`` for the rest of the
    batch; when the task ends, whether done, failed or cancelled before it ever ran, ``abandon``
    gives up whatever reply is still due and every turn still held is given back."""
    taken: list[Turn] = []
    for turn in turns:
        if not turn.try_take():
            for each in reversed(taken):
                each.give_back()
            return None
        taken.append(turn)
    held = HeldTurns(taken)
    try:
        sent = send_first()
    except BaseException:
        held.give_back()
        raise
    if sent is None:
        held.give_back()
        return None
    task = asyncio.ensure_future(complete(sent, held))

    def ended(_: object) -> None:
        try:
            abandon(sent)
        finally:
            held.give_back()

    task.add_done_callback(ended)
    return task


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


class WriteInDoubt(ControllerTimeout):
    """A write timed out after it was put on the wire. The device may still apply it (one whose
    application stalled works through what it received when it resumes), so it is neither done
    nor failed: the next read-back decides."""

    kind = "in_doubt"


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


class Driver(abc.ABC, Generic[SettingsT]):
    """One driver instance per controller, with its protocol's settings typed (``SettingsT``).
    Subclasses set :attr:`level_tolerance` to the level resolution of their protocol, in
    percent, so that confirmation compares like with like."""

    level_tolerance: ClassVar[float] = 0.5

    def __init__(self, controller: ControllerConfig, settings: SettingsT) -> None:
        self.controller = controller
        self.settings = settings

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

    async def release(self, channels: Collection[ChannelId]) -> ApplyResult:
        """Hand these channels back to their owner: the centre withdraws its command and the
        owner's own control takes over (BACnet: NULL at the centre's priority). Returns like
        ``apply()``, without reading back. A driver whose devices have nobody to hand back to keeps
        this default, which refuses every channel rather than pretend (and its plugin does not
        declare the ``release`` capability)."""
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

    def push_interval_s(self) -> float | None:
        """With pushes: the longest a healthy device goes between two pushed readings (a driver
        that pushes full polls of its own says how often), or None when pushes come on change
        only, so that silence is no sign of a lost device. The fault rules count missed pushes
        with it."""
        return None


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
    capabilities: frozenset[str]
    """What its drivers can do beyond the contract's core, copied onto each of its controllers
    by the config loader (``lightctl.model.installation.RELEASE``: hand channels back)."""
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

    def create_driver(self, controller: ControllerConfig) -> Driver[Any]: ...

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
