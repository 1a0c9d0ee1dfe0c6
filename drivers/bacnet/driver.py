"""The BACnet/IP driver: one building controller, reached through the shared client.

Writes go at the controller's command priority (default 10): WritePropertyMultiple where the
device supports it (protocol-services-supported, and a reject of the service turns it off),
else WriteProperty requests in parallel within the device's limit. Reads use
ReadPropertyMultiple in chunks (a device that aborts a chunk as too large gets smaller ones);
a device without it (optional in BACnet) is read with ReadProperty, one property per request.
Another party holding a channel above our priority is reported as ``held_by``, not as a fault.

A write that times out after it was sent raises :class:`drivers.base.WriteInDoubt`: a device
whose application stalled works through what it received when it resumes, so the write may
still be applied, and the next read-back decides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from bacpypes3.apdu import (
    APDU,
    ConfirmedRequestPDU,
    ErrorPDU,
    ErrorRejectAbortNack,
    ReadPropertyACK,
    ReadPropertyMultipleACK,
    WritePropertyMultipleError,
)
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from drivers.bacnet import readings, services
from drivers.bacnet.client import BacnetClient, acquire, release
from drivers.bacnet.cov import CovSession
from drivers.bacnet.direct import UnexpectedReply, raise_for_reply
from drivers.bacnet.errors import is_oversize, is_unsupported, translate
from drivers.bacnet.frames import frame
from drivers.bacnet.profile import ObjectRef, Profile, load_profile
from drivers.bacnet.services import Read, Write
from drivers.bacnet.settings import BacnetSettings
from drivers.base import (
    ControllerTimeout,
    Driver,
    DriverError,
    HeldTurns,
    LockTurn,
    PreparedSend,
    ProtocolFault,
    WriteInDoubt,
    fire_with_turns,
    settings_of,
)
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import (
    ApplyResult,
    ChannelId,
    ChannelState,
    ControllerReading,
    PlannedOperation,
)

log = logging.getLogger(__name__)

WRITES_CACHE_SIZE = 256
"""Batches whose writes a driver keeps built (a show's cues, the scenes in use)."""

T = TypeVar("T")

Started = list[asyncio.Future[bytes] | None]
"""Per WritePropertyMultiple request of a fired batch, the reply to come of the request already
on the wire (None: that one was not sent, and goes the ordinary way)."""


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
        self._by_object = {str(ref): cid for cid, ref in self.points.items()}
        self.use_rpm = self.profile.read_property_multiple
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

    @property
    def connected(self) -> bool:
        return self._client is not None

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
        values = await self.read_properties([(device, "objectName"), (device, "protocolServicesSupported")])
        name = values.get((f"device,{self.settings.device_instance}", "objectName"))
        self.device_name = None if name is None or services.is_error(name) else str(name)
        supported = values.get((f"device,{self.settings.device_instance}", "protocolServicesSupported"))
        if supported is not None and not services.is_error(supported):
            if not supported["read-property-multiple"]:
                self.use_rpm = False
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

    def push_interval_s(self) -> float | None:
        """COV's full poll (power, energy, faults) comes every half lifetime or ``cov_poll_s``;
        a device polled instead pushes every ``poll_s``."""
        settings = self.settings
        return min(settings.cov_lifetime_s / 2, settings.cov_poll_s) if self.use_cov else self.controller.poll_s

    def _start_push(self) -> None:
        assert self._on_reading is not None
        self._cov = CovSession(self, self._on_reading)
        self._cov.start()

    @property
    def cov(self) -> CovSession | None:
        """The running COV (or polling) session, once readings are pushed and connected."""
        return self._cov

    def channel_of(self, objid: Any) -> ChannelId | None:
        """The channel whose object this is (``type,instance``), if any."""
        return self._by_object.get(f"{objid[0]},{objid[1]}")

    def channel_objects(self) -> list[ObjectIdentifier]:
        return [services.object_id(ref) for ref in self.points.values()]

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
    async def _timeout(self, what: str, *, write: bool = False) -> AsyncIterator[None]:
        """The controller's timeout. ``write``: the request is on the wire, so a timeout leaves
        it in doubt (WriteInDoubt) rather than simply unanswered."""
        try:
            async with asyncio.timeout(self.controller.timeout_s):
                yield
        except TimeoutError:
            waited = f"no answer within {self.controller.timeout_s:g} s"
            if write:
                raise WriteInDoubt(
                    self.controller_id, f"{self.label} {what}: {waited}, timed out; may still be applied, read-back decides"
                ) from None
            raise ControllerTimeout(self.controller_id, f"{self.label} {what}: {waited}") from None

    async def call(self, apdu: APDU, what: str) -> Any:
        """One confirmed request through bacpypes3. Errors, rejects and aborts propagate as
        ErrorRejectAbortNack for the caller to judge."""
        async with self._bounded(what):
            return await self.client.request(apdu)

    async def write(
        self, build: Callable[[], ConfirmedRequestPDU], what: str, started: asyncio.Future[bytes] | None = None
    ) -> None:
        """One write request: straight onto the client's socket where it can go (direct.py),
        else through bacpypes3. A refusal is raised as the device sent it (ErrorRejectAbortNack,
        typed from its reply: nothing is sent twice). ``started``: the reply to come of this
        request, already put on the wire by ``fire`` (holding its place in the device's
        concurrency until the reply)."""
        try:
            if started is not None:
                async with self._timeout(what, write=True):
                    data = await started
                raise_for_reply(data, self.address.addrTuple)
                return
            if self._client is None:
                await self.connect()
            assert self._sem is not None
            direct = self.client.direct
            async with self._sem, self._timeout(what, write=True):
                if direct is not None and direct.available and await direct.write(build()):
                    return
                await self.client.request(build())
        except UnexpectedReply as exc:
            raise ProtocolFault(self.controller_id, f"{self.label} {what}: {exc}") from None

    def failure(self, what: str, exc: ErrorRejectAbortNack) -> DriverError:
        """The device's error, reject or abort for ``what`` as the project's typed error."""
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
        await self.connect()
        writes, rejected = self._writes(states)
        return await self._send(states, writes, rejected)

    async def release(self, channels: Collection[ChannelId]) -> ApplyResult:
        """Hand the channels back to the building: relinquish (NULL at our priority), so the next
        priority in the array (the building's own schedule, or the relinquish default) takes over."""
        await self.connect()
        states: dict[ChannelId, ChannelState | None] = dict.fromkeys(channels)
        writes, rejected = self._writes(states)
        return await self._send(states, writes, rejected)

    def prepare(self, states: Mapping[ChannelId, ChannelState]) -> PreparedSend | None:
        """A batch's WritePropertyMultiple requests, encoded and framed, ready to go straight onto
        the client's socket (a warm session only, and one that writes with WPM)."""
        client = self._client
        if client is None or client.direct is None or not self.use_wpm:
            return None
        writes, rejected = self._writes(states)
        if not writes:
            return None
        requests = [services.wpm_request(batch, self.address) for batch in services.wpm_batches(writes, self.profile.max_apdu)]
        return PreparedBatch(self, dict(states), writes, rejected, requests, [frame(r, 0) for r in requests])

    def fire(self, batch: PreparedBatch) -> asyncio.Future[ApplyResult] | None:
        """``PreparedSend.fire`` for a batch of this driver's: each WPM request takes one of the
        device's concurrent places (its turns) now or the fire declines; the requests leave
        before this returns; each place is given back when its reply comes."""
        client, sem = self._client, self._sem
        direct = client.direct if client is not None else None
        if direct is None or not direct.available or sem is None:
            return None
        turns = [LockTurn(sem) for _ in batch.requests]

        def send_first() -> Started:
            return [direct.start(request, framed) for request, framed in zip(batch.requests, batch.framed, strict=True)]

        async def complete(started: Started, held: HeldTurns) -> ApplyResult:
            for reply, turn in zip(started, turns, strict=True):
                if reply is None:  # not sent (256 requests in flight): its place is for the ordinary way
                    held.give_back(turn)
                else:
                    reply.add_done_callback(partial(_give_back, held, turn))
            return await self._send(batch.states, batch.writes, batch.rejected, started)

        return fire_with_turns(turns, send_first, complete, _abandon)

    async def _send(
        self,
        states: Mapping[ChannelId, ChannelState | None],
        writes: list[Write],
        rejected: dict[str, str],
        started: Started | None = None,
    ) -> ApplyResult:
        """Send a batch's writes, or (``started``) finish one whose WPM requests ``fire`` put on
        the wire, and remember what the device now holds."""
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

    async def _send_writes(self, writes: list[Write], rejected: dict[str, str], started: Started | None) -> ApplyResult:
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
        """One WriteProperty; the device's refusal as the channel's reason (None: written)."""
        try:
            await self.write(lambda: services.wp_request(write, self.address), write.describe())
        except ErrorRejectAbortNack as exc:
            return str(self.failure(write.describe(), exc))
        return None

    async def _send_wpm(self, writes: list[Write], started: Started | None) -> tuple[int, dict[str, str]]:
        """Send the writes in WritePropertyMultiple requests (``started``: one per request, the
        replies to come of requests already on the wire). A device stops a WPM at the first
        write it refuses (the ones before it stand): that channel is rejected, the rest resent."""
        sent = 0
        rejected: dict[str, str] = {}
        batches = services.wpm_batches(writes, self.profile.max_apdu)

        async def run(batch: list[Write], first: asyncio.Future[bytes] | None) -> None:
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
                        raise _WpmUnsupported(str(self.failure(what, exc))) from None
                    if not isinstance(exc, WritePropertyMultipleError):
                        raise self.failure(what, exc) from None
                    failed = exc.firstFailedWriteAttempt
                    index = next(
                        (i for i, w in enumerate(pending) if services.object_id(w.ref) == failed.objectIdentifier),
                        None,
                    )
                    if index is None:
                        raise self.failure(what, exc) from None
                    rejected[pending[index].channel] = str(self.failure(pending[index].describe(), exc))
                    pending, first = pending[index + 1 :], None

        firsts: Started = started or [None] * len(batches)
        await _together([run(batch, first) for batch, first in zip(batches, firsts, strict=True)])
        return sent, rejected

    # ------------------------------------------------------------------ reads

    async def read_properties(self, reads: list[Read]) -> dict[tuple[str, str], Any]:
        """Values of these properties (services.decode_rpm's keys): ReadPropertyMultiple, or
        ReadProperty where the device has no ReadPropertyMultiple (a reject of the service turns
        it off for this device)."""
        if self.use_rpm:
            try:
                return await self._rpm(reads)
            except _RpmUnsupported as unsupported:
                log.info("%s: %s; reading with ReadProperty from now on", self.controller_id, unsupported)
                self.use_rpm = False
        return await self._rp(reads)

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
                        await _together([run(chunk[:half]), run(chunk[half:])])
                        return
                    if is_unsupported(exc) and not isinstance(exc, ErrorPDU):
                        raise _RpmUnsupported(str(self.failure(what, exc))) from None
                    raise self.failure(what, exc) from None
                if not isinstance(ack, ReadPropertyMultipleACK):
                    raise ProtocolFault(self.controller_id, f"{self.label} {what}: unexpected reply {ack!r}")
                values.update(services.decode_rpm(ack))
                return

        await _together([run(chunk) for chunk in pending])
        return values

    async def _rp(self, reads: list[Read]) -> dict[tuple[str, str], Any]:
        """One ReadProperty per property, within the device's concurrency. A property the device
        refuses maps to its ErrorType, as in a ReadPropertyMultiple ack."""
        values: dict[tuple[str, str], Any] = {}

        async def run(read: Read) -> None:
            objid, prop = read
            what = f"{objid[0]},{objid[1]} {prop} ReadProperty"
            try:
                ack = await self.call(services.rp_request(read, self.address), what)
            except ErrorPDU as exc:
                values[(f"{objid[0]},{objid[1]}", prop)] = services.access_error(exc.errorClass, exc.errorCode)
                return
            except ErrorRejectAbortNack as exc:
                raise self.failure(what, exc) from None
            if not isinstance(ack, ReadPropertyACK):
                raise ProtocolFault(self.controller_id, f"{self.label} {what}: unexpected reply {ack!r}")
            values.update(services.decode_rp(ack))

        await _together([run(read) for read in reads])
        return values

    async def read(self, channels: Collection[ChannelId] | None = None) -> ControllerReading:
        await self.connect()
        full = channels is None
        wanted = list(self.points) if channels is None else [c for c in channels if c in self.points]
        props = readings.confirm_props(self.profile)
        priority = self.settings.priority
        if full:
            reads: list[Read] = []
            for cid in wanted:
                objid = services.object_id(self.points[cid])
                reads += [(objid, p) for p in (*props, "reliability")]
                if self.points[cid].kind == "lighting-output":
                    reads.append((objid, "instantaneousPower"))
            for meter in (self.profile.power, self.profile.energy):
                if meter is not None:
                    reads.append((services.object_id(meter), "presentValue"))
            values = await self.read_properties(reads)
        else:
            # A read-back of what we just wrote needs only the present values; who holds a
            # channel (and what we hold under them) is asked only where they differ.
            quick = [cid for cid in wanted if cid in self._sent]
            explain = [cid for cid in wanted if cid not in self._sent]
            values = await self.read_properties([(services.object_id(self.points[c]), "presentValue") for c in quick])
            explain += [cid for cid in quick if not readings.as_sent(self.points[cid], values, self._sent.get(cid))]
            reads = [(services.object_id(self.points[c]), p) for c in explain for p in props if p != "presentValue"]
            if reads:
                values.update(await self.read_properties(reads))
            missing = [cid for cid in explain if (str(self.points[cid]), "presentValue") not in values]
            if missing:
                values.update(await self.read_properties(
                    [(services.object_id(self.points[c]), "presentValue") for c in missing]
                ))
        held = [cid for cid in wanted if readings.held_without_slot(self.points[cid], values, priority)]
        if held:  # someone above us: what do we hold underneath? (one element of the array)
            slot = f"priorityArray[{priority}]"
            values.update(await self.read_properties([(services.object_id(self.points[cid]), slot) for cid in held]))
        channel_readings = {
            cid: readings.channel_reading(self.points[cid], values, self.settings, self.profile, self._scene_sent.get(cid))
            for cid in wanted
        }
        power = readings.scaled(values, self.profile.power, self.profile.power_scale_w) if full else None
        energy = readings.scaled(values, self.profile.energy, self.profile.energy_scale_kwh) if full else None
        # A confirmation (of levels) does not ask reliability: its empty fault sets say nothing.
        return ControllerReading(at=time.time(), channels=channel_readings, power_w=power, energy_kwh=energy, complete=full)


async def _together(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run the coroutines together (one is simply awaited); on the first failure the others are
    cancelled, not left running behind the caller, and the failure raised."""
    if len(coroutines) == 1:
        return [await coroutines[0]]
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _WpmUnsupported(Exception):
    pass


class _RpmUnsupported(Exception):
    pass


@dataclass(frozen=True, slots=True, eq=False)
class PreparedBatch:
    """A batch's WPM requests, encoded and framed by ``BacnetDriver.prepare``; ``fire`` puts them
    on the client's socket, and the rest of the batch (a refused write, WPM unsupported) is the
    driver's ordinary path."""

    driver: BacnetDriver
    states: dict[ChannelId, ChannelState]
    writes: list[Write]
    rejected: dict[str, str]
    requests: list[ConfirmedRequestPDU]
    framed: list[bytes]

    def fire(self) -> asyncio.Future[ApplyResult] | None:
        return self.driver.fire(self)


def _give_back(held: HeldTurns, turn: LockTurn, _: object) -> None:
    held.give_back(turn)


def _abandon(replies: Started) -> None:
    """Replies still due when a fired batch is over (it was cancelled, or failed early): given
    up, which hands back their invoke ids."""
    for reply in replies:
        if reply is not None and not reply.done():
            reply.cancel()
