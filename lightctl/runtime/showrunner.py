"""Running a light show across every protocol in one beat.

* Connections are warmed, and every cue compiled by its drivers, before the first cue; the start
  instant is shared by all controllers on the monotonic clock (``start + loop * duration + cue.at_s``).
* Each controller has a sender task and a mailbox of its cues: fired ones, whose outcome the
  sender records, and at most one not yet sent. A controller still busy with an earlier cue (slow,
  or offline and timing out) takes the newest cue when it is free: it catches up at the next cue
  and never replays old ones (a cue replaced before it was sent is recorded as ``skipped``).
* While the show runs, its cues are a layer of the desired state above the schedule and below
  operator overrides and curtailment: channels an operator holds are left out of every cue, and
  curtailment caps apply to them. At the end the channels return to the
  schedule, or hold the last cue (``end: hold``) until the show is stopped.
* Cues are sent without a read-back, so that a slow bus (DALI at 1,200 baud) is free for the next
  cue; background convergence leaves the show's controllers alone while it runs, and their pushed
  readings (OPC UA data changes) are paused: a burst of them to decode would hold the loop when a
  beat is due. The final state is confirmed by read-back once, when the show ends (or holds its
  last cue), and the pushes resume then.
* Per cue and controller the record keeps the status (sent, failed, skipped) and how far from the
  beat its send started (fired, or begun by the sender).
* About 50 ms before a beat each controller's driver prepares its cue (``Driver.prepare``: the
  compiling, encoding and session lookup), and at the beat the runner fires every prepared cue in
  one tight synchronous pass (``Engine.fire``): each is a socket write or two and their
  bookkeeping (30-90 µs), so with 200 controllers the last request leaves 10-20 ms after the
  first. A cue that cannot be fired (the controller is still busy, or its driver has no prepared
  send) goes to the controller's sender task, which sends it with ``Engine.send`` as soon as it can.
* The last 5 ms before a beat are waited without yielding (``lightctl.loop.sleep_until``).
* Controllers are fired cheapest first, by what each one's send took at the previous beat
  (see ``send_order``); the order is worked out just before the beat.
"""

from __future__ import annotations

import asyncio
import difflib
import itertools
import logging
import time
from collections import deque
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from lightctl.loop import collect_due, collections_held, short_switch_interval, sleep_until
from lightctl.model.desired import ChannelKey, Layer
from lightctl.model.scenes import ShowConfig
from lightctl.model.values import ChannelId, ChannelState
from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import ControllerOutcome
from lightctl.resolve.desired import capped
from lightctl.runtime.commands import Override
from lightctl.runtime.showreach import Hold, reachable, show_holds
from scenes.model import SceneBook
from scenes.shows import CompiledShow, compile_show

log = logging.getLogger("lightctl.shows")

LEAD_S = 0.5
"""Time between the warm-up and the first beat: every sender is idle and waiting by then."""
PREPARE_S = 0.05
"""How long before a beat the runner wakes to prepare it (the send order, each driver's send)."""
SPIN_S = 0.005
"""The last moments before a beat are waited without yielding, so that no callback that falls
due then makes the beat late (see lightctl.loop.sleep_until)."""
MAX_SEND_COST_S = 0.05
"""A gap longer than this between two fires is not one fire's cost (the process was descheduled);
it counts as this much."""


def send_order(controllers: list[str], starts: dict[str, float], cost: dict[str, float]) -> list[str]:
    """The controllers, cheapest send first. ``starts`` holds when each controller's cue was fired
    at the last beat: the fires run back to back in one pass, so the time to the next one's start
    is what this one's cost. ``cost`` keeps the estimate (mean of the last and the previous
    estimate); unknown controllers keep their place at cost 0."""
    timeline = sorted(starts.items(), key=lambda item: item[1])
    for (cid, started), (_, following) in itertools.pairwise(timeline):
        took = min(following - started, MAX_SEND_COST_S)
        cost[cid] = took if cid not in cost else (cost[cid] + took) / 2
    return sorted(controllers, key=lambda cid: cost.get(cid, 0.0))


@dataclass(slots=True)
class Slot:
    """A cue for one controller: fired at the beat (``fired`` is its outcome to come, and
    ``sent_at`` when it was fired) or waiting for the controller's sender to send it."""

    loop: int
    cue: int
    batch: dict[ChannelId, ChannelState]
    beat: float
    deadline_s: float
    fired: Coroutine[Any, Any, ControllerOutcome] | None = None
    sent_at: float | None = None

    def close(self) -> None:
        """Drop the slot untaken (the show ended or was stopped): a fired send goes on to its end
        on its own, only its outcome is not waited for. (The send a sender was awaiting is
        cancelled with the sender when a show is stopped: the driver abandons it.)"""
        if self.fired is not None:
            self.fired.close()


class ShowRefused(ValueError):
    pass


class UnknownShow(ShowRefused):
    """No show of that id is configured."""


class ShowHeld(ShowRefused):
    """A show some (or all) of whose channels operators hold: ``holds`` says which and how."""

    def __init__(self, message: str, holds: Sequence[Hold], zone: tzinfo, options: Sequence[str]) -> None:
        super().__init__(message)
        self.holds = list(holds)
        self.zone = zone
        self.options = list(options)

    def as_json(self) -> dict[str, Any]:
        return {"error": str(self), "held_by": [h.as_json(self.zone) for h in self.holds], "options": self.options}


@dataclass
class CueRecord:
    loop: int
    cue: int
    controller_id: str
    status: str
    sent_offset_ms: float | None
    error: str | None = None


@dataclass
class ShowRun:
    run_id: int
    show: CompiledShow
    user: str
    start_monotonic: float = 0.0
    started_at: str = ""
    loop: int = 0
    cue: int = -1
    status: str = "starting"
    records: list[CueRecord] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    holds: list[Hold] = field(default_factory=list)
    """What held some of the show's channels when it started (it started anyway)."""
    zone: tzinfo | None = None

    def as_json(self) -> dict[str, Any]:
        done = [r for r in self.records if r.status != "skipped"]
        zone = self.zone or UTC
        return {
            "held_back": [h.as_json(zone) for h in self.holds if h.blocks],
            "capped": [h.as_json(zone) for h in self.holds if not h.blocks],
            "run_id": self.run_id,
            "show": self.show.config.id,
            "user": self.user,
            "status": self.status,
            "started_at": self.started_at,
            "loop": self.loop,
            "loops": self.show.config.loops,
            "cue": self.cue,
            "cues": len(self.show.cues),
            "controllers": len(self.show.controllers),
            "sent": sum(1 for r in done if r.status == "sent"),
            "failed": sum(1 for r in done if r.status == "failed"),
            "skipped": sum(1 for r in self.records if r.status == "skipped"),
        }


class ShowRecords(Protocol):
    """Where show runs are recorded (the store)."""

    async def show_started(self, show_id: str, user: str) -> int: ...

    async def show_finished(
        self,
        run_id: int,
        status: str,
        loops_done: int,
        cues: Iterable[tuple[int, int, str, str, float | None, str | None]],
        detail: str | None,
    ) -> None: ...


class ShowHost(Protocol):
    """What the runner needs of the daemon, and nothing more."""

    @property
    def engine(self) -> Engine: ...

    @property
    def scenes(self) -> SceneBook: ...

    @property
    def records(self) -> ShowRecords: ...

    def configured_shows(self) -> Sequence[ShowConfig]: ...

    def active_overrides(self) -> Sequence[Override]:
        """Overrides and curtailments in force: they rank above a show's cues."""
        ...

    async def clear_overrides(self, ids: Sequence[int], *, user: str, reason: str) -> None:
        """End these overrides without a command of their own (a show is about to start)."""
        ...

    def now(self) -> datetime: ...

    async def confirm(self, keys: Iterable[ChannelKey], reason: str) -> object:
        """Send and read back these channels' desired state (a held show's last cue)."""
        ...

    async def reconcile(self, reason: str, *, source: str, force_keys: Iterable[ChannelKey]) -> object:
        """Bring the field to the desired state for now, sending ``force_keys`` in any case."""
        ...


class ShowRunner:
    def __init__(self, host: ShowHost) -> None:
        self.host = host
        self.current: ShowRun | None = None
        self.last: ShowRun | None = None
        self.layer: Layer | None = None
        """The running show's layer of the desired state (its cues so far), or None."""
        self._ending: asyncio.Task[None] | None = None
        """A stopped show's return to the schedule, still running."""

    def shows(self) -> list[dict[str, Any]]:
        return [
            {"id": s.id, "name": s.name, "target": s.target, "duration_s": s.duration_s, "loops": s.loops, "cues": len(s.cues)}
            for s in self.host.configured_shows()
        ]

    async def start(
        self, show_id: str, *, user: str, anyway: bool = False, clear_overrides: bool = False
    ) -> ShowRun:
        """Start a show now. Channels that operator overrides or curtailments hold are named
        first: with any of them, the show starts only ``anyway`` (those channels keep what holds
        them) or after ``clear_overrides`` (the overrides on its channels end; curtailments stay,
        an emergency measure is ended only by restoring it). A show that would reach none of its
        channels is refused whatever is asked."""
        if self.current is not None and self.current.status in ("starting", "running"):
            raise ShowRefused(f"show {self.current.show.config.id!r} is running (run #{self.current.run_id}): stop it first")
        if self._ending is not None:  # the last show's return to the schedule finishes first
            await asyncio.gather(self._ending, return_exceptions=True)
        config = next((s for s in self.host.configured_shows() if s.id == show_id), None)
        if config is None:
            names = [s.id for s in self.host.configured_shows()]
            close = difflib.get_close_matches(show_id, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownShow(f"unknown show {show_id!r}{hint} (known: {', '.join(names) or 'none configured'})")
        compiled = compile_show(config, self.host.scenes)
        zone = self.host.now().tzinfo or UTC
        holds = show_holds(compiled.channels, self.host.active_overrides(), self.host.scenes.inventory)
        if clear_overrides:
            ids = [h.override.id for h in holds if h.override.kind == "override"]
            if ids:
                await self.host.clear_overrides(ids, user=user, reason=f"to start show {show_id}")
            holds = [h for h in holds if h.override.kind != "override"]
        self._check_reach(show_id, compiled, holds, zone, anyway)
        run_id = await self.host.records.show_started(show_id, user)
        run = ShowRun(run_id, compiled, user, holds=holds, zone=zone)
        self.current = run
        run.task = asyncio.create_task(self._run(run), name=f"show:{show_id}")
        return run

    @staticmethod
    def _check_reach(show_id: str, show: CompiledShow, holds: Sequence[Hold], zone: tzinfo, anyway: bool) -> None:
        blocking = [h for h in holds if h.blocks]
        if not blocking:
            return
        reach = reachable(show.channels, holds)
        why = "; ".join(h.describe(zone) for h in blocking)
        overrides = any(h.override.kind == "override" for h in blocking)
        curtailments = sorted(h.override.id for h in blocking if h.override.kind == "curtail")
        ways = []
        if overrides:
            ways.append("clear the overrides that hold it (--clear-overrides)")
        if curtailments:
            ways.append("restore the curtailment(s) first (lightctl curtail restore " + " ".join(map(str, curtailments)) + ")")
        if not reach:
            raise ShowHeld(
                f"show {show_id!r} would reach none of its {len(show.channels)} channels: {why}; to run it, "
                + " or ".join(ways), holds, zone, ["clear_overrides"] if overrides else [],
            )
        if not anyway:
            held = len(show.channels) - len(reach)
            raise ShowHeld(
                f"show {show_id!r} cannot reach {held} of its {len(show.channels)} channels: {why}; start it anyway "
                f"(--anyway: the held channels keep what holds them) or " + " or ".join(ways),
                holds, zone, ["anyway", *(["clear_overrides"] if overrides else [])],
            )

    async def stop(self, *, user: str) -> ShowRun:
        """Stop the running show (or release a held one) and return at once: the show's sends are
        cancelled and its layer is gone, and the field's return to the schedule (a command of its
        own, confirmed by read-back and recorded) goes on in the background."""
        run = self.current
        if run is None or run.task is None or run.task.done():
            if run is not None and run.status == "holding":
                self._end_in_background(run, "stopped", f"hold released by {user}")
                return run
            raise ShowRefused("no show is running")
        run.task.cancel()
        await asyncio.gather(run.task, return_exceptions=True)
        self._end_in_background(run, "stopped", f"stopped by {user}")
        return run

    def _end_in_background(self, run: ShowRun, status: str, detail: str) -> None:
        self.layer = None
        run.status = status
        self._ending = asyncio.create_task(self._end(run, status, detail), name=f"show-end:{run.show.config.id}")

    async def close(self) -> None:
        run = self.current
        if run is not None and run.task is not None and not run.task.done():
            run.task.cancel()
            await asyncio.gather(run.task, return_exceptions=True)
            await self._record(run, "interrupted", "the daemon stopped")
        if self._ending is not None:
            await asyncio.gather(self._ending, return_exceptions=True)

    # -- the run -----------------------------------------------------------------------------

    async def _run(self, run: ShowRun) -> None:
        try:
            await self._perform(run)
        except Exception as exc:  # a fault of ours must not leave the show "running" for ever
            log.exception("show %s run #%d failed", run.show.config.id, run.run_id)
            await self._end(run, "failed", f"internal error: {exc!r}")

    async def _perform(self, run: ShowRun) -> None:
        show, engine = run.show, self.host.engine
        engine.hold(show.controllers)
        await engine.connect_all(controller_ids=sorted(show.controllers))
        await engine.pause_pushes(show.controllers, True)
        for cue in show.cues:  # compile ahead: drivers that cache compiled batches only send at the beat
            for cid, batch in cue.batches.items():
                engine.runtimes[cid].driver.plan(batch)
        mailboxes: dict[str, deque[Slot]] = {cid: deque() for cid in show.controllers}
        wake = {cid: asyncio.Event() for cid in show.controllers}
        order = list(dict.fromkeys([*(cid for cue in show.cues for cid in cue.batches), *sorted(show.controllers)]))
        starts: dict[str, float] = {}
        cost: dict[str, float] = {}
        senders = [asyncio.create_task(self._sender(run, cid, mailboxes[cid], wake[cid])) for cid in order]
        run.start_monotonic = start = time.monotonic() + LEAD_S
        run.started_at = self.host.now().isoformat(timespec="seconds")
        run.status = "running"
        duration = show.config.duration_s
        try:
            with collections_held(), short_switch_interval():
                for loop in range(show.config.loops):
                    run.loop = loop
                    for cue in show.cues:
                        beat = start + loop * duration + cue.at_s
                        await asyncio.sleep(max(0.0, beat - PREPARE_S - time.monotonic()))
                        collect_due()  # garbage collection before the beat, never during it
                        if starts:
                            order = send_order(order, starts, cost)
                            starts.clear()
                        batches = self._capped(cue.batches)
                        prepared = {cid: engine.prepare(cid, batch) for cid, batch in batches.items()}
                        deadline = max(0.2, min(engine.settings.deadline_s, show.gap_after(cue.index)))
                        await sleep_until(beat, SPIN_S)
                        for cid in order:
                            due = batches.get(cid)
                            if due is None:
                                continue
                            mailbox = mailboxes[cid]
                            if mailbox and mailbox[-1].fired is None:  # never sent: the newest cue replaces it
                                old = mailbox.pop()
                                run.records.append(CueRecord(old.loop, old.cue, cid, "skipped", None, "a later cue came first"))
                            slot = Slot(loop, cue.index, due, beat, deadline)
                            ready = prepared[cid]
                            if ready is not None:
                                firing = time.monotonic()
                                slot.fired = engine.fire(cid, due, ready, deadline)
                                if slot.fired is not None:
                                    starts[cid] = slot.sent_at = firing
                            mailbox.append(slot)
                        for cid in batches:  # the senders run once the pass is over
                            wake[cid].set()
                        run.cue = cue.index
                        self.layer = Layer("show", None, show.config.target, f"{show.config.id} cue {cue.index}", states=cue.accumulated)
                    await asyncio.sleep(max(0.0, start + (loop + 1) * duration - time.monotonic()))
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            for mailbox in mailboxes.values():
                for slot in mailbox:
                    slot.close()
        if show.config.end == "hold":
            run.status = "holding"
            await engine.pause_pushes(show.controllers, False)
            try:
                await self.host.confirm(show.channels, f"show {show.config.id} holds its last cue")
            finally:  # released only now: see _end
                engine.hold(show.controllers, False)
            await self._record(run, "holding", None)
        else:
            await self._end(run, "done", None)

    def _capped(self, batches: dict[str, dict[ChannelId, ChannelState]]) -> dict[str, dict[ChannelId, ChannelState]]:
        """Operator overrides and curtailments sit above shows: channels an operator holds are
        left out of the cue, and curtailment caps apply to every cue."""
        select = self.host.scenes.inventory.select
        overrides = self.host.active_overrides()
        held = frozenset().union(*(select(o.target) for o in overrides if o.kind == "override"))
        caps = [(select(o.target), o.cap) for o in overrides if o.cap is not None]
        if not held and not caps:
            return batches
        out: dict[str, dict[ChannelId, ChannelState]] = {}
        for cid, batch in batches.items():
            kept = {}
            for ch, state in batch.items():
                if (cid, ch) in held:
                    continue
                for selected, cap in caps:
                    if (cid, ch) in selected and cap is not None:
                        state = capped(state, cap)
                kept[ch] = state
            if kept:
                out[cid] = kept
        return out

    async def _sender(
        self,
        run: ShowRun,
        controller_id: str,
        mailbox: deque[Slot],
        wake: asyncio.Event,
    ) -> None:
        """Sees a controller's cues through: a fired send's outcome is awaited, and a cue that
        could not be fired at the beat (the controller was busy, or its driver has no prepared
        send) is sent from here, when the controller is free."""
        engine = self.host.engine
        while True:
            await wake.wait()
            wake.clear()
            while mailbox:
                slot = mailbox.popleft()
                try:
                    if slot.fired is not None:
                        outcome = await slot.fired
                    else:
                        slot.sent_at = time.monotonic()
                        outcome = await engine.send(controller_id, slot.batch, slot.deadline_s)
                    status, error = outcome.status.value, outcome.error
                except Exception as exc:  # a driver's fault: this cue failed, the later ones go on
                    log.exception("%s: cue %d failed unexpectedly", controller_id, slot.cue)
                    status, error = "failed", f"internal error: {exc!r}"
                sent_offset_ms = None if slot.sent_at is None else (slot.sent_at - slot.beat) * 1000.0
                run.records.append(CueRecord(slot.loop, slot.cue, controller_id, status, sent_offset_ms, error))

    async def _end(self, run: ShowRun, status: str, detail: str | None) -> None:
        """The show is over once the field is back where it should be, confirmed by read-back.
        Its controllers stay held until that command has run: released earlier, their supervisors
        would converge the last cue (fade included) and keep the controllers from the command."""
        self.layer = None
        engine = self.host.engine
        try:
            await engine.pause_pushes(run.show.controllers, False)
            await self.host.reconcile(f"show {run.show.config.id} {status}", source="show", force_keys=run.show.channels)
        except Exception:
            log.exception("show %s run #%d: the return to the schedule failed", run.show.config.id, run.run_id)
        finally:
            engine.hold(run.show.controllers, False)
            await self._record(run, status, detail)

    async def _record(self, run: ShowRun, status: str, detail: str | None) -> None:
        run.status = status
        self.last = run
        await self.host.records.show_finished(
            run.run_id,
            status,
            run.loop + 1 if run.cue >= 0 else 0,
            [(r.loop, r.cue, r.controller_id, r.status, r.sent_offset_ms, r.error) for r in run.records],
            detail,
        )
        log.info("show %s run #%d %s: %s", run.show.config.id, run.run_id, status, run.as_json())
