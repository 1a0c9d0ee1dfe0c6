"""The reconciler: holds desired and reported state per controller and closes the gap.

* ``command()`` is the one switch: every controller concerned gets its batch at once, bounded by a
  semaphore, each with its own deadline; the result per controller is *confirmed* (read back and
  equal), *unconfirmed* (accepted, but the read-back disagrees or did not come) or *failed* (why).
* A supervisor task per controller polls it on its own interval (or, for a driver that pushes
  readings, takes its pushes instead) and, whenever desired and confirmed differ (a failed command,
  a controller back online, a local change seen by a poll or a push), converges it in the background
  with capped, jittered backoff. An offline controller never delays the others; a controller a
  show drives (``hold``) is left to the show.
* A channel whose desired state is RELEASED (lightctl.inventory.handback) is handed back to its owner
  through ``Driver.release`` and confirmed by a read-back that shows the centre's command
  withdrawn; whatever level the owner then runs is not a mismatch, and convergence only ever
  releases it again (when a reading shows the centre's command back in place).
* Commands and polls are separate paths: a poll is skipped while a command holds or waits for the
  controller; a command waits at most for the one poll already in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable, Mapping
from typing import Any

from drivers.base import DriverError, PreparedSend, WriteInDoubt
from drivers.registry import get_plugin
from lightctl.inventory.index import ControllerInfo, Inventory
from lightctl.model.desired import ChannelKey, Desired, Released
from lightctl.model.values import (
    ApplyResult,
    ChannelId,
    ChannelState,
    ControllerReading,
    LinkState,
)
from lightctl.reconcile.controller import LockTaken, Runtime, busy, describe_mismatch, matches, refusal
from lightctl.reconcile.outcomes import (
    CommandOutcome,
    ControllerOutcome,
    ConvergedEvent,
    EngineEvent,
    EngineSettings,
    LinkEvent,
    Listener,
    ReadingEvent,
    Reconfigured,
    Status,
)
from lightctl.reconcile.reconnect import Backoff, Link

log = logging.getLogger("lightctl.engine")

CONFIRM_RETRY_DELAY_S = 0.05
"""Pause before reading back again when the first read-back disagrees (a contactor still moving)."""
SILENT_POLLS = 3
"""A pushing device silent this many poll intervals is polled once (a watchdog: silence may be death)."""
OFFLINE_PROBE_S = 1.0
"""Deadline for a controller already known to be offline, so a command's answer is not held up."""


# --------------------------------------------------------------------------- the engine


class Engine:
    def __init__(self, inventory: Inventory, settings: EngineSettings | None = None) -> None:
        self.inventory = inventory
        self.settings = settings or EngineSettings()
        self.listeners: list[Listener] = []
        self.runtimes: dict[str, Runtime] = {cid: self._runtime(info) for cid, info in inventory.controllers.items()}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False

    def _runtime(self, info: ControllerInfo) -> Runtime:
        driver = get_plugin(info.controller.protocol).create_driver(info.controller)
        return Runtime(
            info,
            driver,
            Link(info.controller.id, Backoff(self.settings.retry_initial_s, self.settings.retry_max_s)),
            converge_backoff=Backoff(self.settings.retry_initial_s, self.settings.retry_max_s),
        )

    def _supervisor(self, rt: Runtime) -> None:
        rt.pushed = rt.driver.subscribe(functools.partial(self._on_push, rt))
        self._tasks[rt.id] = asyncio.create_task(self._supervise(rt), name=f"supervise:{rt.id}")

    async def reconfigure(self, inventory: Inventory) -> Reconfigured:
        """Take a new inventory while running (a config reload). Controllers whose config is
        unchanged keep their runtime, driver and session, with their place in the new inventory;
        removed ones are stopped and closed; changed ones are closed and made anew, like added
        ones. The caller holds every command off meanwhile (and no show runs)."""
        old = self.runtimes
        new = inventory.controllers
        removed = sorted(cid for cid in old if cid not in new)
        changed = sorted(cid for cid in old if cid in new and new[cid].controller != old[cid].info.controller)
        added = sorted(cid for cid in new if cid not in old)
        gone = [old[cid] for cid in (*removed, *changed)]
        tasks = [self._tasks.pop(rt.id) for rt in gone if rt.id in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(rt.driver.close() for rt in gone), return_exceptions=True)
        runtimes: dict[str, Runtime] = {}
        for cid, info in new.items():
            if cid in old and cid not in changed:
                rt = old[cid]
                rt.info = info  # its site, district and tags as the new config has them
            else:
                rt = self._runtime(info)
            runtimes[cid] = rt
        self.inventory, self.runtimes = inventory, runtimes
        if self._running:
            for cid in (*changed, *added):
                self._supervisor(runtimes[cid])
        return Reconfigured(tuple(added), tuple(removed), tuple(changed), len(runtimes) - len(added) - len(changed))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start one supervisor per controller. Connections are made on first use."""
        self._running = True
        for rt in self.runtimes.values():
            self._supervisor(rt)

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(rt.driver.close() for rt in self.runtimes.values()), return_exceptions=True)

    async def connect_all(self, timeout_s: float = 5.0, controller_ids: Iterable[str] | None = None) -> int:
        """Open sessions now (warm start before a show or a benchmark). Returns how many
        controllers answered; the others are marked offline and retried in the background."""
        wanted = list(self.runtimes.values()) if controller_ids is None else [self.runtimes[c] for c in controller_ids]
        pending = iter(wanted)
        answered = 0

        async def worker() -> None:  # a pool, not a semaphore: see command()
            nonlocal answered
            for rt in pending:
                try:
                    async with asyncio.timeout(timeout_s):
                        await rt.driver.connect()
                except (DriverError, TimeoutError) as exc:
                    self._link_failed(rt, str(exc) if isinstance(exc, DriverError) else "connect timed out")
                    continue
                self._link_ok(rt)
                answered += 1

        await asyncio.gather(*(worker() for _ in range(min(self.settings.concurrency, len(wanted)))))
        return answered

    async def send(self, controller_id: str, batch: Mapping[ChannelId, ChannelState], deadline_s: float) -> ControllerOutcome:
        """Send one controller's batch now without reading it back (a show's cue). The batch
        becomes that controller's desired state; it counts as confirmed only after a read-back."""
        rt = self.runtimes[controller_id]
        self._sending(rt, batch)
        taken = LockTaken()
        return await self._sent(rt, self._locked_apply(rt, batch, taken), len(batch), deadline_s, taken)

    def prepare(self, controller_id: str, batch: Mapping[ChannelId, ChannelState]) -> PreparedSend | None:
        """The driver's prepared send for a batch (``Driver.prepare``), or None; a driver's
        fault here is logged, and the batch is then sent the ordinary way."""
        rt = self.runtimes[controller_id]
        if rt.lock.locked():  # busy (a slow send, a poll): the fire would decline anyway
            return None
        try:
            return rt.driver.prepare(batch)
        except Exception:
            log.exception("%s: preparing a send failed; it will be sent with apply()", rt.id)
            return None

    def fire(
        self, controller_id: str, batch: Mapping[ChannelId, ChannelState], prepared: PreparedSend, deadline_s: float
    ) -> Coroutine[Any, Any, ControllerOutcome] | None:
        """``send`` with the batch's first request(s) on the wire before this returns, from what
        ``Driver.prepare`` made ready: a show's beat fires every controller in one tight pass.
        None when the controller is busy or the prepared send no longer holds (the driver sent
        nothing), or when the driver's fire failed against its contract (logged); the caller then
        uses ``send``."""
        rt = self.runtimes[controller_id]
        if not rt.lock.try_acquire():
            return None
        rt.lock.holder = "a show's cue"
        try:
            future = prepared.fire()
        except Exception:  # a driver's fault must not end the show: the cue goes the ordinary way
            log.exception("%s: a prepared send failed to fire; sending it with apply()", rt.id)
            future = None
        if future is None:
            rt.lock.release()
            return None
        future.add_done_callback(functools.partial(self._fired, rt))
        self._sending(rt, batch)
        return self._sent(rt, future, len(batch), deadline_s)

    @staticmethod
    def _fired(rt: Runtime, future: asyncio.Future[ApplyResult]) -> None:
        """A fired send is done: the controller is free again. Its error is taken here too, so
        that one nobody waits for any more (the show ended) is not reported as never retrieved;
        the outcome itself is the awaiting caller's (``_sent``)."""
        rt.lock.release()
        if not future.cancelled():
            future.exception()

    @staticmethod
    def _sending(rt: Runtime, batch: Mapping[ChannelId, ChannelState]) -> None:
        rt.desired.update(batch)
        for ch in batch:
            rt.confirmed.pop(ch, None)

    @staticmethod
    async def _locked_apply(rt: Runtime, batch: Mapping[ChannelId, ChannelState], taken: LockTaken) -> ApplyResult:
        async with rt.lock:
            rt.lock.holder = "a show's cue"
            taken.taken = True
            return await rt.driver.apply(batch)

    async def _sent(
        self, rt: Runtime, sending: Awaitable[ApplyResult], channels: int, deadline_s: float, taken: LockTaken | None = None
    ) -> ControllerOutcome:
        """The outcome of a send without read-back, waited for until the deadline. A send that
        never got the controller (``taken`` says) failed for being busy, not for the device."""
        started = time.perf_counter()

        def outcome(status: Status, operations: int = 0, kind: str | None = None, error: str | None = None) -> ControllerOutcome:
            return ControllerOutcome(rt.id, status, time.perf_counter() - started, operations, kind, error, channels)

        try:
            async with asyncio.timeout(deadline_s):
                result = await sending
        except DriverError as exc:
            self._link_failed(rt, str(exc))
            status = Status.UNCONFIRMED if isinstance(exc, WriteInDoubt) else Status.FAILED
            return outcome(status, 0, exc.kind, exc.detail)
        except TimeoutError:
            if taken is not None and not taken.taken:
                return outcome(Status.FAILED, 0, "busy", busy(rt, deadline_s))
            self._link_failed(rt, f"no answer within {deadline_s:g} s")
            return outcome(Status.FAILED, 0, "timeout", f"no answer within {deadline_s:g} s")
        self._link_ok(rt)
        if result.rejected:
            return outcome(Status.FAILED, result.operations, "rejected", refusal(result.rejected))
        return outcome(Status.SENT, result.operations)

    async def pause_pushes(self, controller_ids: Iterable[str], paused: bool) -> None:
        """Pause (or resume) the controllers' own pushed readings while a show drives them."""
        ids = list(controller_ids)
        results = await asyncio.gather(*(self.runtimes[cid].driver.pause_pushes(paused) for cid in ids), return_exceptions=True)
        for cid, result in zip(ids, results, strict=True):
            if isinstance(result, Exception):  # the driver broke its promise not to raise
                log.error("%s: pausing pushes failed: %r", cid, result)

    def hold(self, controller_ids: Iterable[str], held: bool = True) -> None:
        """Keep background convergence off these controllers (a show drives them), or release
        them (``held=False``), waking their supervisors."""
        for cid in controller_ids:
            rt = self.runtimes[cid]
            rt.held = held
            if not held:
                rt.wake.set()

    # -- desired state -----------------------------------------------------------------------

    def set_desired(self, desired: Mapping[ChannelKey, Desired]) -> set[ChannelKey]:
        """Replace the desired state of the given channels; returns those that changed."""
        changed: set[ChannelKey] = set()
        for key, state in desired.items():
            rt = self.runtimes[key[0]]
            if rt.desired.get(key[1]) != state:
                rt.desired[key[1]] = state
                changed.add(key)
        return changed

    # -- the one switch ----------------------------------------------------------------------

    async def command(
        self, keys: Iterable[ChannelKey], on_outcome: Callable[[ControllerOutcome], None] | None = None
    ) -> CommandOutcome:
        """Send the desired state of these channels now (forced, even where it seems in force),
        read it back, and report per controller: each controller's outcome also goes to
        ``on_outcome`` as soon as it is known (a console shows them as they come)."""
        started = time.perf_counter()
        batches: dict[str, dict[ChannelId, Desired]] = defaultdict(dict)
        for cid, ch in keys:
            state = self.runtimes[cid].desired.get(ch)
            if state is not None:
                batches[cid][ch] = state
        # A fixed pool of workers takes the batches in turn: asyncio.Semaphore on Python 3.11 scans
        # its waiters on every release (thousands waiting at the one switch: quadratic).
        pending = iter(batches.items())
        outcomes: dict[str, ControllerOutcome] = {}

        async def worker() -> None:
            for cid, batch in pending:  # one shared iterator: each batch is taken once
                outcomes[cid] = await self._dispatch(self.runtimes[cid], batch, on_outcome)

        await asyncio.gather(*(worker() for _ in range(min(self.settings.concurrency, len(batches)))))
        return CommandOutcome(time.perf_counter() - started, {cid: outcomes[cid] for cid in batches})

    async def _dispatch(
        self, rt: Runtime, batch: dict[ChannelId, Desired], on_outcome: Callable[[ControllerOutcome], None] | None = None
    ) -> ControllerOutcome:
        known_offline = rt.link.state is LinkState.OFFLINE
        deadline = min(self.settings.deadline_s, OFFLINE_PROBE_S) if known_offline else self.settings.deadline_s
        outcome = await self._apply_and_confirm(rt, batch, deadline)
        assert outcome is not None  # a command always has a batch
        if outcome.status is not Status.CONFIRMED:
            rt.wake.set()  # the supervisor takes it from here, with backoff
        if on_outcome is not None:
            try:
                on_outcome(outcome)
            except Exception:  # a faulty listener must never fail the command
                log.exception("%s: the outcome's listener failed", rt.id)
        return outcome

    async def _apply_and_confirm(
        self, rt: Runtime, batch: Mapping[ChannelId, Desired] | None, deadline_s: float
    ) -> ControllerOutcome | None:
        """Apply and read back. With ``batch=None`` (background convergence) the batch is what is
        still pending once the controller is ours: a command that ran meanwhile is not repeated,
        and None is returned when nothing is left to do."""
        started = time.perf_counter()
        applied = False
        taken = False
        operations = 0

        def outcome(status: Status, kind: str | None = None, error: str | None = None) -> ControllerOutcome:
            return ControllerOutcome(
                rt.id, status, time.perf_counter() - started, operations, kind, error, len(batch or ())
            )

        if batch is not None:
            for ch in batch:
                rt.confirmed.pop(ch, None)
        try:
            async with asyncio.timeout(deadline_s) as deadline, rt.lock:
                taken = True
                rt.lock.holder = "a command" if batch is not None else "background convergence"
                if batch is None:
                    batch = rt.pending()
                    if not batch:
                        return None
                states = {ch: st for ch, st in batch.items() if isinstance(st, ChannelState)}
                released = [ch for ch, st in batch.items() if isinstance(st, Released)]
                fade = max((st.fade_s for st in states.values()), default=0.0)
                if fade:  # the read-back waits for the fade: the deadline runs from its end
                    when = deadline.when()
                    deadline.reschedule(None if when is None else when + fade)
                rejected: dict[ChannelId, str] = {}
                try:
                    if states:
                        result = await rt.driver.apply(states)
                        applied = True
                        operations, rejected = result.operations, dict(result.rejected)
                    if released:
                        result = await rt.driver.release(released)
                        applied = True
                        operations += result.operations
                        rejected.update(result.rejected)
                except DriverError as exc:
                    self._link_failed(rt, str(exc))
                    # A write in doubt may still land: not failed, not confirmed; a read-back decides.
                    status = Status.UNCONFIRMED if isinstance(exc, WriteInDoubt) else Status.FAILED
                    return outcome(status, exc.kind, exc.detail)
                self._link_ok(rt)
                if rejected:
                    return outcome(Status.FAILED, "rejected", refusal(rejected))
                if fade:
                    await asyncio.sleep(fade)
                tolerance = rt.driver.level_tolerance
                reading: ControllerReading | None = None
                for attempt in range(self.settings.confirm_retries + 1):
                    if attempt:
                        await asyncio.sleep(CONFIRM_RETRY_DELAY_S * attempt)
                    try:
                        reading = await rt.driver.read(batch.keys())
                    except DriverError as exc:
                        self._link_failed(rt, str(exc))
                        return outcome(Status.UNCONFIRMED, exc.kind, f"read-back failed: {exc.detail}")
                    self._take_reading(rt, reading, partial=True, readback=True)
                    if all(matches(reading.channels.get(ch), st, tolerance) for ch, st in batch.items()):
                        rt.confirmed.update(batch)
                        rt.converge_backoff.reset()
                        return outcome(Status.CONFIRMED)
                assert reading is not None
                return outcome(Status.UNCONFIRMED, "mismatch", describe_mismatch(batch, reading, tolerance))
        except TimeoutError:
            if not taken:  # the controller was busy with something of ours: not a field fault
                return outcome(Status.FAILED, "busy", busy(rt, deadline_s))
            if applied:
                return outcome(Status.UNCONFIRMED, "timeout", f"no read-back within {deadline_s:g} s of the end of the fade")
            self._link_failed(rt, f"no answer within {deadline_s:g} s")
            return outcome(Status.FAILED, "timeout", f"no answer within {deadline_s:g} s")

    # -- observation -------------------------------------------------------------------------

    def _on_push(self, rt: Runtime, reading: ControllerReading) -> None:
        """A reading the driver pushed: the device is there, and a channel it shows away from
        what was confirmed is converged again."""
        self._link_ok(rt)
        before = len(rt.confirmed)
        self._take_reading(rt, reading, partial=True, observed=True)
        if len(rt.confirmed) < before:
            rt.wake.set()

    def _take_reading(
        self, rt: Runtime, reading: ControllerReading, *, partial: bool = False, observed: bool = False,
        readback: bool = False,
    ) -> None:
        """Keep a reading. ``partial``: it covers some channels only (a read-back, a push).
        ``observed`` (polls and pushes, not our own read-backs): channels it shows away from what
        was confirmed are no longer confirmed, so that they are converged again. A ``readback``
        asked for levels: it is passed on as not ``complete`` (its fault flags say nothing), and
        the controller's faults and measurements are kept from the reading before."""
        if readback and reading.complete:
            reading = dataclasses.replace(reading, complete=False)
        previous = rt.reading.channels if rt.reading is not None else {}
        changed = {
            ch: r
            for ch, r in reading.channels.items()
            if (old := previous.get(ch)) is None
            or (old.on, old.level, old.released, old.held_by) != (r.on, r.level, r.released, r.held_by)
        }
        if partial and rt.reading is not None and (len(reading.channels) < len(rt.reading.channels) or not reading.complete):
            merged = dict(rt.reading.channels)
            merged.update(reading.channels)
            reading = ControllerReading(
                reading.at,
                merged,
                reading.power_w if reading.power_w is not None else rt.reading.power_w,
                reading.energy_kwh if reading.energy_kwh is not None else rt.reading.energy_kwh,
                reading.faults if reading.complete else rt.reading.faults,
                reading.measurements or rt.reading.measurements,
                reading.complete,
            )
        seen = reading.channels
        rt.reading = reading
        if observed or not partial:
            tolerance = rt.driver.level_tolerance
            for ch, st in list(rt.confirmed.items()):
                if ch in seen and not matches(seen.get(ch), st, tolerance):
                    del rt.confirmed[ch]
        self._emit(ReadingEvent(rt.id, reading, changed))

    def _link_ok(self, rt: Runtime) -> None:
        rt.seen_at = time.monotonic()
        if rt.link.succeeded():
            self._emit(LinkEvent(rt.id, LinkState.ONLINE, None))

    def _link_failed(self, rt: Runtime, error: str) -> None:
        if rt.link.failed(error):
            self._emit(LinkEvent(rt.id, LinkState.OFFLINE, error))

    def _emit(self, event: EngineEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a faulty listener must never stop the engine
                log.exception("engine listener failed on %s", type(event).__name__)

    async def poll(self, rt: Runtime) -> bool:
        """One full poll of a controller, unless a command has it. True if a reading came."""
        async with rt.lock.try_poll() as allowed:
            if not allowed:
                return False
            try:
                async with asyncio.timeout(rt.info.controller.timeout_s * 2):
                    reading = await rt.driver.read(None)
            except DriverError as exc:
                self._link_failed(rt, str(exc))
                return False
            except TimeoutError:
                self._link_failed(rt, "poll timed out")
                return False
        self._link_ok(rt)
        self._take_reading(rt, reading, observed=True)
        return True

    async def _supervise(self, rt: Runtime) -> None:
        poll_s = rt.info.controller.poll_s
        next_poll = time.monotonic() + random.uniform(0.1, 1.0) * poll_s
        rt.seen_at = time.monotonic()
        while self._running:
            now = time.monotonic()
            polling = self.settings.polling and not rt.pushed
            if rt.pushed and self.settings.polling:
                # A device that pushes only on change says nothing when nothing changes, and nothing
                # when it is dead: after SILENT_POLLS poll intervals of silence it is asked once.
                next_poll = rt.seen_at + poll_s * SILENT_POLLS
                polling = True
            wake_at = next_poll if polling else now + 3600.0
            if rt.pending() and not rt.held:
                wake_at = min(wake_at, max(rt.converge_at, rt.link.retry_at))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wake_at - now)):
                    await rt.wake.wait()
            rt.wake.clear()
            now = time.monotonic()
            try:
                if rt.pending() and not rt.held and now >= max(rt.converge_at, rt.link.retry_at):
                    result = await self._apply_and_confirm(rt, None, self.settings.deadline_s)
                    if result is not None:
                        if result.status is not Status.CONFIRMED:
                            rt.converge_at = time.monotonic() + rt.converge_backoff.next_delay()
                        self._emit(ConvergedEvent(result))
                elif polling and now >= next_poll:
                    await self.poll(rt)
                    next_poll = time.monotonic() + poll_s
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one controller's surprise end its supervision
                log.exception("%s: supervisor error", rt.id)
                await asyncio.sleep(1.0)

    # -- views -------------------------------------------------------------------------------

    def reading_of(self, controller_id: str) -> ControllerReading | None:
        return self.runtimes[controller_id].reading

    def unconfirmed(self) -> dict[str, Collection[ChannelId]]:
        return {cid: list(p) for cid, rt in self.runtimes.items() if (p := rt.pending())}
