"""The BACnet/IP driver: one building controller, reached through the shared client.

Writes go at the controller's command priority (default 10): WritePropertyMultiple where the
device supports it (protocol-services-supported, and a reject of the service turns it off),
else WriteProperty requests in parallel within the device's limit. Reads use
ReadPropertyMultiple in chunks; a device that aborts a chunk as too large gets smaller ones.
Another party holding a channel above our priority is reported as ``held_by``, not as a fault.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from bacpypes3.apdu import (
    APDU,
    ConfirmedRequestPDU,
    ErrorRejectAbortNack,
    ReadPropertyMultipleACK,
    WritePropertyMultipleError,
)
from bacpypes3.basetypes import Reliability
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from drivers.bacnet import services
from drivers.bacnet.client import BacnetClient, acquire, release
from drivers.bacnet.cov import CovSession
from drivers.bacnet.errors import is_oversize, is_unsupported, translate
from drivers.bacnet.frames import SIMPLE_ACK, frame
from drivers.bacnet.profile import ObjectRef, Profile, load_profile
from drivers.bacnet.services import Read, Write
from drivers.bacnet.settings import BacnetSettings
from drivers.base import ControllerTimeout, Driver, DriverError, PreparedSend, settings_of, try_acquire
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import (
    ApplyResult,
    ChannelId,
    ChannelReading,
    ChannelState,
    ControllerReading,
    FaultKind,
    PlannedOperation,
)

log = logging.getLogger(__name__)

def confirm_props(profile: Profile, priority: int) -> tuple[str, ...]:
    """What a read-back asks of each channel object: the present value and who holds it. With
    current-command-priority that is one element of the priority array, not all sixteen (whose
    decoding dominates a read-back's cost)."""
    if profile.current_command_priority:
        return ("presentValue", "currentCommandPriority")
    return ("presentValue", "priorityArray")

WRITES_CACHE_SIZE = 256
"""Batches whose writes a driver keeps built (a show's cues, the scenes in use)."""

RELIABILITY_FAULTS = {
    "lampFailure": FaultKind.LAMP_FAILURE,
    "tripped": FaultKind.BREAKER_TRIP,
}


class BacnetDriver(Driver[BacnetSettings]):
    level_tolerance = 0.5

    def __init__(self, controller: ControllerConfig) -> None:
        super().__init__(controller, settings_of(controller, BacnetSettings))
        self.profile: Profile = load_profile(controller.profile)
        self.address = Address(f"{self.settings.host}:{self.settings.port}")
        self.label = f"device {self.settings.device_instance} at {self.settings.host}:{self.settings.port}"
        self.points: dict[ChannelId, ObjectRef] = {
            ch.id: self.profile.point_object(ch.point) for ch in controller.channels
        }
        self._by_object = {f"{ref.kind},{ref.instance}": cid for cid, ref in self.points.items()}
        self.use_wpm = self.profile.write_property_multiple
        self.use_cov = self.profile.cov and self.settings.cov
        self.rpm_chunk = self.profile.rpm_properties
        self.max_concurrent = self.settings.max_concurrent or self.profile.max_concurrent
        self.device_name: str | None = None
        self._client: BacnetClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._on_reading: Callable[[ControllerReading], None] | None = None
        self._cov: CovSession | None = None
        self._sent: dict[ChannelId, Any] = {}
        """What we last commanded each channel to, as the device stores it (for read-backs)."""
        self._built: dict[tuple[tuple[ChannelId, ChannelState | None], ...], tuple[list[Write], dict[str, str]]] = {}
        self._scene_sent: dict[ChannelId, tuple[int, float]] = {}
        """Per scene channel, the state we commanded and the level it stood for: a read-back of
        that state confirms that level (a scene number cannot hold a level of its own)."""

    # ------------------------------------------------------------------ session

    @property
    def client(self) -> BacnetClient:
        if self._client is None:
            raise RuntimeError("not connected")
        return self._client

    async def connect(self) -> None:
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._client is not None:
                return
            client = await acquire(self.settings.local_address, self.settings.host)
            self._client = client
            self._sem = asyncio.Semaphore(self.max_concurrent)
            try:
                await self._identify()
            except BaseException:
                self._client = None
                release(client)
                raise
            if self._on_reading is not None and self._cov is None:
                self._start_push()

    async def _identify(self) -> None:
        """Read the device object: is it there, what is it called, which services it offers."""
        device = ObjectIdentifier(f"device,{self.settings.device_instance}")
        values = await self._rpm([(device, "objectName"), (device, "protocolServicesSupported")])
        name = values.get((f"device,{self.settings.device_instance}", "objectName"))
        self.device_name = None if name is None or services.is_error(name) else str(name)
        supported = values.get((f"device,{self.settings.device_instance}", "protocolServicesSupported"))
        if supported is not None and not services.is_error(supported):
            if not supported["write-property-multiple"]:
                self.use_wpm = False
            if not supported["subscribe-cov"]:
                self.use_cov = False

    async def close(self) -> None:
        cov, self._cov = self._cov, None
        if cov is not None:
            await cov.stop()
        client, self._client = self._client, None
        if client is not None:
            release(client)

    def subscribe(self, on_reading: Callable[[ControllerReading], None]) -> bool:
        """COV where the device accepts it, else the driver polls itself on ``poll_s``: either
        way readings are pushed."""
        self._on_reading = on_reading
        if self._client is not None and self._cov is None:
            self._start_push()
        return True

    def _start_push(self) -> None:
        assert self._on_reading is not None
        self._cov = CovSession(self, self._on_reading)
        self._cov.start()

    # ------------------------------------------------------------------ requests

    @asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        """Within the device's concurrency and the controller's timeout."""
        if self._client is None:
            await self.connect()
        assert self._sem is not None
        async with self._sem, self._timeout(what):
            yield

    @asynccontextmanager
    async def _timeout(self, what: str) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.controller.timeout_s):
                yield
        except TimeoutError:
            raise ControllerTimeout(
                self.controller_id, f"{self.label} {what}: no answer within {self.controller.timeout_s:g} s"
            ) from None

    async def call(self, apdu: APDU, what: str) -> Any:
        """One confirmed request through bacpypes3. Errors, rejects and aborts propagate as
        ErrorRejectAbortNack for the caller to judge."""
        async with self._bounded(what):
            return await self.client.request(apdu)

    async def write(
        self, build: Callable[[], ConfirmedRequestPDU], what: str, started: asyncio.Future[int] | None = None
    ) -> None:
        """One write request: straight onto the client's socket where it can go (direct.py),
        else, and to learn the typed error of anything but a simple ack, through ``call``.
        ``started`` is the reply to come of this request, already put on the wire by ``fire``
        (holding its place in the device's concurrency until the reply)."""
        if started is not None:
            async with self._timeout(what):
                if await started == SIMPLE_ACK:
                    return
        else:
            if self._client is None:
                await self.connect()
            direct = self.client.direct
            if direct is not None and direct.available:
                async with self._bounded(what):
                    if await direct.write(build()):
                        return
        await self.call(build(), what)

    def _fail(self, what: str, exc: ErrorRejectAbortNack) -> DriverError:
        return translate(self.controller_id, self.label, what, exc)

    # ------------------------------------------------------------------ writes

    def _writes(self, states: Mapping[ChannelId, ChannelState | None]) -> tuple[list[Write], dict[str, str]]:
        """The writes for a batch, built once per batch (a show's cues at ``plan()``, a scene's
        at its first use): building bacpypes3's values costs more than sending them."""
        key = tuple(states.items())
        built = self._built.get(key)
        if built is None:
            if len(self._built) >= WRITES_CACHE_SIZE:
                self._built.clear()
            built = self._built[key] = self._build_writes(states)
        return list(built[0]), dict(built[1])

    def _build_writes(self, states: Mapping[ChannelId, ChannelState | None]) -> tuple[list[Write], dict[str, str]]:
        writes, unknown = [], {}
        for cid, state in states.items():
            ref = self.points.get(cid)
            if ref is None:
                unknown[cid] = f"{self.controller_id} has no channel {cid!r}"
                continue
            writes.append(services.channel_write(cid, ref, state, self.profile, self.settings.priority))
        return writes, unknown

    def plan(self, states: Mapping[ChannelId, ChannelState]) -> Sequence[PlannedOperation]:
        writes, _ = self._writes(states)
        if self.use_wpm:  # encoded here, so a show's cues are on the wire at the beat without encoding
            return [
                PlannedOperation(
                    "WritePropertyMultiple",
                    ", ".join(w.describe() for w in batch),
                    tuple(w.channel for w in batch),
                    f"{self.label}, {len(services.wpm_request(batch, self.address).pduData)} octets",
                )
                for batch in services.wpm_batches(writes, self.profile.max_apdu)
            ]
        return [
            PlannedOperation("WriteProperty", w.describe(), (w.channel,), f"{self.label}, {self.max_concurrent} at a time")
            for w in writes
        ]

    async def apply(self, states: Mapping[ChannelId, ChannelState]) -> ApplyResult:
        return await self._send(dict(states))

    async def release(self, channels: Collection[ChannelId]) -> ApplyResult:
        """Hand the channels back to the building: relinquish (NULL at our priority), so the next
        priority in the array (the building's own schedule, or the relinquish default) takes over."""
        return await self._send(dict.fromkeys(channels))

    def prepare(self, states: Mapping[ChannelId, ChannelState]) -> PreparedSend | None:
        """A batch's WritePropertyMultiple requests, encoded and ready to go straight onto the
        client's socket (a warm session only, and one that writes with WPM)."""
        client = self._client
        if client is None or client.direct is None or not self.use_wpm:
            return None
        writes, rejected = self._writes(states)
        if not writes:
            return None
        requests = [services.wpm_request(batch, self.address) for batch in services.wpm_batches(writes, self.profile.max_apdu)]
        return _Prepared(self, dict(states), writes, rejected, requests, [frame(request, 0) for request in requests])

    async def _send(
        self,
        states: Mapping[ChannelId, ChannelState | None],
        prepared: tuple[list[Write], dict[str, str], list[asyncio.Future[int] | None]] | None = None,
    ) -> ApplyResult:
        """Send a batch, or (``prepared``) finish one whose WPM requests ``fire`` put on the wire."""
        if prepared is None:
            await self.connect()
            writes, rejected = self._writes(states)
            started = None
        else:
            writes, rejected, started = prepared
        for write in writes:  # unknown until the device has taken it
            self._sent.pop(write.channel, None)
        result = await self._send_writes(writes, rejected, started)
        for write in writes:
            stored = services.stored_value(write)
            if stored is None or write.channel in result.rejected:
                continue
            self._sent[write.channel] = stored
            state = states[write.channel]
            if write.ref.kind == "multi-state-value" and state is not None:
                self._scene_sent[write.channel] = (int(stored), state.level)
        return result

    async def _send_writes(
        self, writes: list[Write], rejected: dict[str, str], started: list[asyncio.Future[int] | None] | None = None
    ) -> ApplyResult:
        operations = 0
        if (self.use_wpm or started is not None) and writes:
            try:
                sent, refused = await self._send_wpm(writes, started)
                return ApplyResult(operations + sent, {**rejected, **refused})
            except _WpmUnsupported as unsupported:
                operations += 1
                log.info("%s: %s; using WriteProperty from now on", self.controller_id, unsupported)
                self.use_wpm = False
        results = await asyncio.gather(*(self._send_wp(w) for w in writes), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        for write, reason in zip(writes, results, strict=True):
            if isinstance(reason, str):
                rejected[write.channel] = reason
        return ApplyResult(operations + len(writes), rejected)

    async def _send_wp(self, write: Write) -> str | None:
        try:
            await self.write(lambda: services.wp_request(write, self.address), write.describe())
        except ErrorRejectAbortNack as exc:
            return str(self._fail(write.describe(), exc))
        return None

    async def _send_wpm(
        self, writes: list[Write], started: list[asyncio.Future[int] | None] | None = None
    ) -> tuple[int, dict[str, str]]:
        """Send the writes in WritePropertyMultiple requests (``started``: one per request, the
        replies to come of requests already on the wire). A device stops a WPM at the first
        write it refuses (the ones before it stand): that channel is rejected, the rest resent."""
        sent = 0
        rejected: dict[str, str] = {}
        batches = services.wpm_batches(writes, self.profile.max_apdu)

        async def run(batch: list[Write], first: asyncio.Future[int] | None) -> None:
            nonlocal sent
            pending = batch
            while pending:
                sent += 1
                what = f"WritePropertyMultiple of {len(pending)} objects"
                try:
                    await self.write(partial(services.wpm_request, pending, self.address), what, first)
                    return
                except ErrorRejectAbortNack as exc:
                    if is_unsupported(exc) and not isinstance(exc, WritePropertyMultipleError):
                        raise _WpmUnsupported(str(self._fail(what, exc))) from None
                    if not isinstance(exc, WritePropertyMultipleError):
                        raise self._fail(what, exc) from None
                    failed = exc.firstFailedWriteAttempt
                    index = next(
                        (i for i, w in enumerate(pending) if services.object_id(w.ref) == failed.objectIdentifier),
                        None,
                    )
                    if index is None:
                        raise self._fail(what, exc) from None
                    rejected[pending[index].channel] = str(self._fail(pending[index].describe(), exc))
                    pending, first = pending[index + 1 :], None

        firsts: list[asyncio.Future[int] | None] = started or [None] * len(batches)
        await asyncio.gather(*(run(batch, first) for batch, first in zip(batches, firsts, strict=True)))
        return sent, rejected

    # ------------------------------------------------------------------ reads

    async def _rpm(self, reads: list[Read]) -> dict[tuple[str, str], Any]:
        """Read in chunks of ``rpm_chunk`` properties; a chunk the device aborts as too large is
        split, and the smaller size kept for next time."""
        values: dict[tuple[str, str], Any] = {}
        pending = [reads[i : i + self.rpm_chunk] for i in range(0, len(reads), self.rpm_chunk)]

        async def run(chunk: list[Read]) -> None:
            while True:
                what = f"ReadPropertyMultiple of {len(chunk)} properties"
                try:
                    ack = await self.call(services.rpm_request(chunk, self.address), what)
                except ErrorRejectAbortNack as exc:
                    if is_oversize(exc) and len(chunk) > 1:
                        half = len(chunk) // 2
                        self.rpm_chunk = max(1, min(self.rpm_chunk, half))
                        await asyncio.gather(run(chunk[:half]), run(chunk[half:]))
                        return
                    raise self._fail(what, exc) from None
                if not isinstance(ack, ReadPropertyMultipleACK):
                    raise DriverError(self.controller_id, f"{self.label} {what}: unexpected reply {ack!r}")
                values.update(services.decode_rpm(ack))
                return

        await asyncio.gather(*(run(chunk) for chunk in pending))
        return values

    async def read(self, channels: Collection[ChannelId] | None = None) -> ControllerReading:
        await self.connect()
        full = channels is None
        wanted = list(self.points) if channels is None else [c for c in channels if c in self.points]
        props = confirm_props(self.profile, self.settings.priority)
        if full:
            props = (*props, "reliability")
        reads: list[Read] = []
        for cid in wanted:
            objid = services.object_id(self.points[cid])
            reads += [(objid, p) for p in props]
            if full and self.points[cid].kind == "lighting-output":
                reads.append((objid, "instantaneousPower"))
        if full and self.profile.power is not None:
            reads.append((services.object_id(self.profile.power), "presentValue"))
        if full and self.profile.energy is not None:
            reads.append((services.object_id(self.profile.energy), "presentValue"))
        if not full:
            # A read-back of what we just wrote needs only the present values; who holds a
            # channel (and what we hold under them) is asked only where they differ.
            quick = [cid for cid in wanted if cid in self._sent]
            explain = [cid for cid in wanted if cid not in self._sent]
            values = await self._rpm([(services.object_id(self.points[c]), "presentValue") for c in quick])
            explain += [cid for cid in quick if not self._as_sent(cid, values)]
            reads = [(services.object_id(self.points[c]), p) for c in explain for p in props if p != "presentValue"]
            if reads:
                values.update(await self._rpm(reads))
            missing = [cid for cid in explain if (str(self.points[cid]), "presentValue") not in values]
            if missing:
                values.update(await self._rpm([(services.object_id(self.points[c]), "presentValue") for c in missing]))
        else:
            values = await self._rpm(reads)
        held = [cid for cid in wanted if self._held_without_slot(cid, values)]
        if held:  # someone above us: what do we hold underneath? (one element of the array)
            slot = f"priorityArray[{self.settings.priority}]"
            values.update(await self._rpm([(services.object_id(self.points[cid]), slot) for cid in held]))
        readings = {cid: self._channel_reading(cid, values) for cid in wanted}
        power = energy = None
        if full and self.profile.power is not None:
            raw = values.get((str(self.profile.power), "presentValue"))
            power = None if raw is None or services.is_error(raw) else float(raw) * self.profile.power_scale_w
        if full and self.profile.energy is not None:
            raw = values.get((str(self.profile.energy), "presentValue"))
            energy = None if raw is None or services.is_error(raw) else float(raw) * self.profile.energy_scale_kwh
        return ControllerReading(at=time.time(), channels=readings, power_w=power, energy_kwh=energy)

    def _as_sent(self, cid: ChannelId, values: Mapping[tuple[str, str], Any]) -> bool:
        present = values.get((str(self.points[cid]), "presentValue"))
        sent = self._sent.get(cid)
        if present is None or sent is None or services.is_error(present):
            return False
        if isinstance(sent, float | int) and not isinstance(sent, bool):
            return abs(float(present) - float(sent)) < 1e-3
        return str(present) == str(sent)

    def _held_without_slot(self, cid: ChannelId, values: Mapping[tuple[str, str], Any]) -> bool:
        current = values.get((str(self.points[cid]), "currentCommandPriority"))
        if current is None or services.is_error(current) or current.unsigned is None:
            return False
        return int(current.unsigned) < self.settings.priority

    def _channel_reading(self, cid: ChannelId, values: Mapping[tuple[str, str], Any]) -> ChannelReading:
        ref = self.points[cid]
        key = str(ref)
        present = values.get((key, "presentValue"))
        array = values.get((key, "priorityArray"))
        if present is None or services.is_error(present):
            return ChannelReading()
        ours = None
        held_by = None
        priority = self.settings.priority
        holder: tuple[int, Any] | None = None
        if array is not None and not services.is_error(array):
            ours = services.slot_value(array, priority)
            holder = services.priority_holder(array)
        slot = values.get((key, f"priorityArray[{priority}]"))
        current = values.get((key, "currentCommandPriority"))
        if slot is not None and not services.is_error(slot):
            ours = None if slot.null is not None else getattr(slot, slot._choice)
        if current is not None and not services.is_error(current):
            if current.unsigned is None:  # nobody commands it: relinquish default
                holder = None
            else:
                holder = (int(current.unsigned), present)
                if holder[0] == priority:
                    ours = present
        if holder is not None and holder[0] < priority:
            held_by = f"{self.settings.who(holder[0])}: {self._show(ref, holder[1])}"
        value = ours if ours is not None else present
        on, level = self._state_of(ref, value)
        sent = self._scene_sent.get(cid)
        if ref.kind == "multi-state-value" and on and sent is not None and sent[0] == int(value):
            level = sent[1]
        faults: frozenset[FaultKind] = frozenset()
        reliability = values.get((key, "reliability"))
        if reliability is not None and not services.is_error(reliability):
            name = Reliability(reliability).attr
            if name != "noFaultDetected":
                faults = frozenset({RELIABILITY_FAULTS.get(name, FaultKind.DEVICE_FAULT)})
        power = values.get((key, "instantaneousPower"))
        power_w = None if power is None or services.is_error(power) else float(power) * 1000.0
        return ChannelReading(on=on, level=level, power_w=power_w, faults=faults, held_by=held_by,
                              released=self._released(key, values))

    def _released(self, key: str, values: Mapping[tuple[str, str], Any]) -> bool | None:
        """Is our slot of the priority array NULL? Known from the array, from our slot read on
        its own, or from current-command-priority (the highest slot in use: one below ours, or
        none, means ours is empty). None when the reading does not tell."""
        priority = self.settings.priority
        slot = values.get((key, f"priorityArray[{priority}]"))
        if slot is not None and not services.is_error(slot):
            return slot.null is not None
        array = values.get((key, "priorityArray"))
        if array is not None and not services.is_error(array):
            return services.slot_value(array, priority) is None
        current = values.get((key, "currentCommandPriority"))
        if current is not None and not services.is_error(current):
            if current.unsigned is None or int(current.unsigned) > priority:
                return True
            if int(current.unsigned) == priority:
                return False
        return None

    def _state_of(self, ref: ObjectRef, value: Any) -> tuple[bool, float | None]:
        if ref.kind == "binary-output":  # a relay: on or off, no level to report
            return str(value) == "active" or value == 1, None
        if ref.kind == "multi-state-value":
            state = int(value)
            return state > 1, self.profile.scene_level(state)
        level = float(value)
        return level > 0, level

    def _show(self, ref: ObjectRef, value: Any) -> str:
        if ref.kind == "multi-state-value":
            state = int(value)
            states = self.profile.scene_states
            return f"scene {state}" + (f" ({states[state - 1]})" if 0 < state <= len(states) else "")
        if ref.kind == "binary-output":
            return "on" if self._state_of(ref, value)[0] else "off"
        return f"{float(value):g}%"


class _WpmUnsupported(Exception):
    pass


class _Prepared:
    """A batch's WPM requests, encoded: ``fire`` puts them on the client's socket, each within
    the device's concurrency, and the rest of the batch (a refused write, WPM unsupported) is
    the driver's ordinary path."""

    def __init__(
        self,
        driver: BacnetDriver,
        states: dict[ChannelId, ChannelState],
        writes: list[Write],
        rejected: dict[str, str],
        requests: list[ConfirmedRequestPDU],
        framed: list[bytes],
    ) -> None:
        self.driver, self.states, self.writes, self.rejected = driver, states, writes, rejected
        self.requests, self.framed = requests, framed

    def fire(self) -> asyncio.Future[ApplyResult] | None:
        driver = self.driver
        client, sem = driver._client, driver._sem
        direct = client.direct if client is not None else None
        if direct is None or not direct.available or sem is None:
            return None
        taken = 0
        while taken < len(self.requests) and try_acquire(sem):
            taken += 1
        if taken < len(self.requests):  # the device's concurrency is in use: wait for it in apply()
            for _ in range(taken):
                sem.release()
            return None
        started: list[asyncio.Future[int] | None] = []
        for request, framed in zip(self.requests, self.framed, strict=True):
            reply = direct.start(request, framed)
            if reply is None:  # 256 requests in flight to the device: this one goes the ordinary way
                sem.release()
            else:
                reply.add_done_callback(lambda _: sem.release())
            started.append(reply)
        task = asyncio.ensure_future(driver._send(self.states, (self.writes, self.rejected, started)))
        task.add_done_callback(partial(_abandon, started))
        return task


def _abandon(replies: list[asyncio.Future[int] | None], _: object) -> None:
    """Replies still due when a fired batch is over (it was cancelled, or failed early): given
    up, which hands back their invoke ids and their places in the device's concurrency."""
    for reply in replies:
        if reply is not None and not reply.done():
            reply.cancel()
