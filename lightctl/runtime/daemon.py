"""The controller daemon: config -> desired state -> engine -> field, with records and an API.

A restart is not special: on start the daemon loads the operator layers it had (overrides and
curtailments are records), computes the desired state for now and reconciles every channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from lightctl.config.problems import ConfigError
from lightctl.inventory.handback import cannot_release
from lightctl.inventory.handback import refusal as handback_refusal
from lightctl.inventory.index import Inventory
from lightctl.inventory.selectors import SelectorError
from lightctl.loop import settle_heap
from lightctl.model.config import Config
from lightctl.model.desired import (
    ChannelKey,
    Desired,
    DesiredState,
    Layer,
    Released,
    ScheduleSource,
    released_keys,
)
from lightctl.model.energy import DimmingCurve
from lightctl.model.scenes import HANDBACK_SCENE, ShowConfig
from lightctl.model.times import from_ms, iso_local
from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import (
    ControllerOutcome,
    ConvergedEvent,
    EngineEvent,
    EngineSettings,
    LinkEvent,
    ReadingEvent,
    Status,
)
from lightctl.resolve.desired import resolve
from lightctl.resolve.loading import load_config
from lightctl.runtime.commands import CommandRefused, CommandReport, CurtailReport, NotFound, Override
from lightctl.runtime.events import Published
from lightctl.runtime.hooks import DaemonService
from lightctl.runtime.observed import observed_now
from lightctl.runtime.reload import ReloadRefused, ReloadReport, reload_daemon
from lightctl.runtime.showrunner import ShowRefused, ShowRunner
from lightctl.runtime.telemetry import Telemetry
from lightctl.services.reports.forecast import shed as shed_by
from lightctl.services.reports.lighting_on import InspectionSettings
from lightctl.services.reports.live import live_metrics
from lightctl.store import ResultRow, Store, StoreWriteFailed
from lightctl.store.rollups import RollupModel
from scenes.model import SceneBook, UnknownScene
from schedules.runner import run_until_cancelled

log = logging.getLogger("lightctl.daemon")

UNRECORDED_SOURCES = frozenset({"schedule", "startup", "expiry", "show", "reload"})
"""The daemon's own commands, which switch even when the store cannot record them."""

READING_RECORD_INTERVAL_S = 60.0
"""Readings are recorded at most this often per controller (state changes: every one); the
energy roll-ups take each channel's state as holding between them."""


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        database: str | Path | None = None,
        engine_settings: EngineSettings | None = None,
        schedule: ScheduleSource | None = None,
        clock: Callable[[], float] = time.time,
        store: Store | None = None,
        config_path: str | Path | None = None,
    ) -> None:
        """``store``: records elsewhere than ``database`` or the config's (tests give a store with
        a short busy timeout)."""
        self.config = config
        self.config_path = config_path
        """The file the config came from, read again by a reload (None: built in code, tests)."""
        self.inventory = Inventory(config)
        self.scenes = SceneBook(config.all_scenes(), self.inventory)
        self.tz = ZoneInfo(config.installation.timezone)
        settings = config.daemon
        self.engine = Engine(
            self.inventory,
            engine_settings
            or EngineSettings(
                concurrency=settings.concurrency,
                deadline_s=settings.deadline_s,
                confirm_retries=settings.confirm_retries,
            ),
        )
        self.store = store or Store(
            database if database is not None else settings.database,
            reading_retention_days=settings.reading_retention_days,
            rollups=RollupModel.from_config(config),
            retention=config.reports.retention,
        )
        self.curve = DimmingCurve.of(config.reports.energy)
        self.schedule = schedule
        self.clock = clock
        self.revision = 0
        """Counts changes to the overrides and the ends of commands: a view of the daemon built at one
        revision (the API's shared status) is stale at the next."""
        self._overrides: list[Override] = []
        self.subscribers: list[Callable[[Published], None]] = []
        self.command_lock = asyncio.Lock()
        self._last_recorded: dict[str, float] = {}
        self._expiry_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.records = self.store.shows
        self.shows = ShowRunner(self)
        self.telemetry = Telemetry(self.engine, self.store, self.shows, lambda: list(self.overrides))
        self.services: list[DaemonService] = [self.telemetry]
        """Parts that follow the field (lightctl.runtime.hooks): the telemetry, then what
        lightctl.runtime.wiring attaches."""
        self._scheduled_shows_started: set[tuple[str, str]] = set()
        self._schedule_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, reconcile: bool = True) -> None:
        await asyncio.to_thread(self.store.open)
        self.engine.listeners.append(self._on_engine_event)
        for o in await self.store.layers.active():
            until = from_ms(o.until, self.tz) if o.until is not None else None
            self.overrides = [*self.overrides, Override(o.id, o.kind, o.scene, o.target, o.user, until, o.cap)]
        for service in self.services:
            await service.start()
        await self.engine.start()
        settle_heap()
        self._expiry_task = asyncio.create_task(self._expire_overrides(), name="override-expiry")
        if reconcile:
            await self.reconcile("startup", source="startup", force=True)

    def run_schedule(self) -> None:
        """Reconcile at every schedule transition, clock jump and missed trigger, from now on (the
        daemon has just reconciled). Started again when a reload brings a new schedule."""
        if self._schedule_task is not None:
            self._schedule_task.cancel()
            self._schedule_task = None
        if self.schedule is not None:
            self._schedule_task = asyncio.create_task(
                run_until_cancelled(self.schedule, self.reconcile, zone=self.tz, wall=self.clock), name="schedule-runner"
            )

    async def stop(self) -> None:
        if self._schedule_task is not None:
            self._schedule_task.cancel()
            await asyncio.gather(self._schedule_task, return_exceptions=True)
        await self.shows.close()
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            await asyncio.gather(self._expiry_task, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.engine.stop()
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                log.exception("service %s did not stop cleanly", service.name)
        await asyncio.to_thread(self.store.close)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.tz)

    # -- desired state -----------------------------------------------------------------------

    def layers(self) -> list[Layer]:
        """Layers above the schedule, lowest first: a running show, operator overrides (an
        operator who darkened an area for an incident is not overruled by the 20:40 show), then
        curtailments, which sit above everything."""
        shows = [self.shows.layer] if self.shows.layer is not None else []
        return [*shows, *self.operator_layers()]

    @property
    def overrides(self) -> list[Override]:
        """Operator overrides and curtailments in force. Replaced, never changed in place, so that
        every change counts in :attr:`revision`."""
        return self._overrides

    @overrides.setter
    def overrides(self, value: list[Override]) -> None:
        self._overrides = value
        self.revision += 1

    def active_overrides(self) -> list[Override]:
        return list(self.overrides)

    async def clear_overrides(self, ids: Sequence[int], *, user: str, reason: str) -> None:
        """End overrides without a command of their own: what follows (a show) sends the field."""
        await self.store.layers.clear(ids, by=f"{user} ({reason})")
        self.overrides = [o for o in self.overrides if o.id not in ids]
        log.info("override(s) %s cleared by %s %s", ", ".join(f"#{i}" for i in ids), user, reason)

    def operator_layers(self) -> list[Layer]:
        """Overrides (hand-backs among them), then curtailments, which sit above everything."""
        overrides = [o.layer() for o in self.overrides if o.kind == "override"]
        curtailments = [o.layer() for o in self.overrides if o.kind == "curtail"]
        return overrides + curtailments

    def configured_shows(self) -> list[ShowConfig]:
        return list(self.config.shows)

    def desired_now(self, extra: Layer | None = None) -> tuple[DesiredState, dict[ChannelKey, str]]:
        layers = self.layers() if extra is None else [*self.layers(), extra]
        return resolve(self.now(), self.inventory, self.scenes, self.schedule, layers, self.config.schedule.default_scene)

    async def reconcile(
        self, reason: str, *, source: str = "schedule", force: bool = False, force_keys: Iterable[ChannelKey] = ()
    ) -> CommandReport | None:
        """Bring the field to the desired state for now. Only what changed is sent, unless forced
        (start-up: nothing is known of the field yet), and ``force_keys`` are sent in any case
        (the channels a show just drove: their end state is confirmed by read-back)."""
        async with self.command_lock:
            desired, _why = self.desired_now()
            changed = self.engine.set_desired(desired)
            keys = set(desired) if force else changed | set(force_keys)
            report = None
            if keys:
                report = await self._run_command(keys, user="lightctl", source=source, action="reconcile", scene=None, target=reason)
        await self._start_scheduled_shows()
        return report

    async def confirm(self, keys: Iterable[ChannelKey], reason: str) -> CommandReport:
        """Send and read back these channels' desired state (a held show's last cue)."""
        async with self.command_lock:
            return await self._run_command(set(keys), user="lightctl", source="show", action="confirm", scene=None, target=reason)

    async def _start_scheduled_shows(self) -> None:
        """A show one of whose ``schedule_entries`` is in force starts, once per operating night."""
        if self.schedule is None:
            return
        now = self.now()
        active = {entry.entry for entry in self.schedule.active(now)}
        night = (now - timedelta(hours=12)).date()
        for show in self.config.shows:
            key = (show.id, night.isoformat())
            entry = next((e for e in show.schedule_entries if e in active), None)
            if entry is not None and key not in self._scheduled_shows_started:
                self._scheduled_shows_started.add(key)
                try:
                    run = await self.shows.start(show.id, user=f"schedule:{entry}", anyway=True)
                except ShowRefused as exc:
                    log.warning("scheduled show %s not started: %s", show.id, exc)
                    continue
                for hold in run.holds:
                    log.warning("scheduled show %s started, but %s", show.id, hold.describe(self.tz))

    # -- the one switch ----------------------------------------------------------------------

    def next_transition(self) -> datetime | None:
        """When the schedule next changes what is lit, if it has anything to say."""
        if self.schedule is None:
            return None
        return self.schedule.next_change(self.now())

    async def apply_scene(
        self,
        scene: str,
        target: str = "*",
        *,
        user: str,
        until: datetime | Literal["next"] | None = "next",
        kind: str = "override",
    ) -> CommandReport:
        """An operator's scene on a selector, now: an override layer, then a forced command to
        every channel it selects. It holds ``until`` a time, by default until the schedule's next
        transition (so the nightly run takes over again), or with ``until=None`` until cleared."""
        if until == "next":
            until = self.next_transition()
        try:
            self.scenes.states(scene)
        except UnknownScene as exc:
            raise NotFound(str(exc)) from None
        selected = self.select(target)
        refused = cannot_release(self.inventory, released_keys(self.scenes.compile(scene, selected)))
        if refused:
            raise CommandRefused(handback_refusal(f"scene {scene!r} on {target!r}", refused))
        if until is not None and until <= self.now():
            raise CommandRefused(f"'until' {until.isoformat()} is in the past")
        async with self.command_lock:
            superseded = [o.id for o in self.overrides if o.kind == kind and self.inventory.select(o.target) <= selected]
            oid = await self.store.layers.add(
                user=user, kind=kind, scene=scene, target=target, until=until, supersedes=superseded
            )
            self.overrides = [*(o for o in self.overrides if o.id not in superseded), Override(oid, kind, scene, target, user, until)]
            desired, _why = self.desired_now()
            self.engine.set_desired(desired)
            # What the scene sets on the selector, forced; channels it leaves alone keep their state.
            reached = self.scenes.compile(scene, selected).keys()
            report = await self._run_command(
                reached, user=user, source="operator", action=kind, scene=scene, target=target, layer_id=oid
            )
        return report

    async def handback(
        self, target: str, *, user: str, until: datetime | Literal["next"] | None = "next"
    ) -> CommandReport:
        """Hand the channels of a selector back to their owners now: an override with the
        built-in ``handback`` scene, confirmed by read-back like any command. Refused, naming
        them, when the selector reaches controllers with no owner to hand back to."""
        return await self.apply_scene(HANDBACK_SCENE, target, user=user, until=until)

    async def curtail(
        self, target: str, cap: float, *, user: str, until: datetime | None = None
    ) -> CurtailReport:
        """Emergency load shedding: cap the level of every channel on a selector (0 = off),
        above every other layer, and record what was shed."""
        if not 0 <= cap < 100:
            raise CommandRefused(f"a curtailment level must be 0 (off) to 99 percent, got {cap:g}")
        selected = self.select(target)
        async with self.command_lock:
            before, _ = self.desired_now()
            after, _ = self.desired_now(self.curtail_layer(target, cap, user=user, until=until))
            shed = [
                (s.controller_id, s.channel_id, s.luminaires, s.level_before, s.level_after, s.shed_w)
                for s in shed_by(self.inventory, selected, before, after, self.output_of, self.curve)
            ]
            oid = await self.store.layers.add(
                user=user, kind="curtail", scene="curtail", target=target, until=until, cap=cap, shed=shed
            )
            self.overrides = [*self.overrides, Override(oid, "curtail", "curtail", target, user, until, cap)]
            self.engine.set_desired(after)
            report = await self._run_command(
                selected, user=user, source="operator", action="curtail", scene=f"curtail to {cap:g}%", target=target,
                layer_id=oid,
            )
        return CurtailReport(oid, len(shed), sum(r[2] for r in shed), sum(r[5] for r in shed) / 1000, report)

    async def reload(self, config: Config) -> ReloadReport:
        """Take a new, already validated config while running (lightctl.runtime.reload)."""
        return await reload_daemon(self, config)

    async def reload_from_file(self) -> ReloadReport:
        """Read the config file the daemon was started from again, validate it completely, and
        take it; any problem refuses the reload and the running config stays (SIGHUP, the API)."""
        if self.config_path is None:
            raise ReloadRefused("this daemon was not started from a config file: nothing to reload")
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            raise ReloadRefused(f"the config file has problems; the running config is kept.\n{exc}") from None
        return await self.reload(config)

    def select(self, target: str) -> frozenset[ChannelKey]:
        """The channels an operator's selector names; a selector that is malformed, names what does
        not exist, or matches no channel at all is refused, naming it (a command that would reach
        nothing must not pass for one that worked)."""
        try:
            selected = self.inventory.select(target)
        except SelectorError as exc:
            raise CommandRefused(str(exc)) from None
        if not selected:
            raise CommandRefused(f"selector {target!r} matches no channel: nothing would be switched")
        return selected

    def curtail_layer(self, target: str, cap: float, *, user: str = "what-if", until: datetime | None = None) -> Layer:
        """The layer a curtailment of ``target`` to ``cap`` percent would add (not applied)."""
        return Override(0, "curtail", "curtail", target, user, until, cap).layer()

    def output_of(self, key: ChannelKey, state: Desired) -> float:
        """Output in percent: commanded, or for a channel its owner runs, as last read."""
        if not isinstance(state, Released):
            return state.output
        reading = self.engine.reading_of(key[0])
        got = reading.channels.get(key[1]) if reading is not None else None
        if got is None or not got.on:
            return 0.0
        return got.level if got.level is not None else 100.0

    async def restore(self, curtailment_ids: list[int] | None, *, user: str) -> CommandReport | None:
        """End curtailments (all of them when ``curtailment_ids`` is None): one command."""
        active = [o.id for o in self.overrides if o.kind == "curtail"]
        ids = active if curtailment_ids is None else curtailment_ids
        unknown = sorted(set(ids) - set(active))
        if unknown:
            raise NotFound(f"no active curtailment {', '.join(f'#{i}' for i in unknown)}")
        if not ids:
            raise NotFound("no curtailment is active")
        await self.store.layers.clear(ids, by=user)
        self.overrides = [o for o in self.overrides if o.id not in ids]
        return await self.reconcile(f"curtailment {', '.join(f'#{i}' for i in ids)} restored by {user}", source="operator")

    async def clear_override(self, override_id: int, *, user: str) -> CommandReport | None:
        if not any(o.id == override_id for o in self.overrides):
            raise NotFound(f"no active override #{override_id}")
        await self.store.layers.clear([override_id], by=user)
        self.overrides = [o for o in self.overrides if o.id != override_id]
        return await self.reconcile(f"override #{override_id} cleared by {user}", source="operator")

    async def _run_command(
        self,
        keys: Any,
        *,
        user: str,
        source: str,
        action: str,
        scene: str | None,
        target: str | None,
        layer_id: int | None = None,
    ) -> CommandReport:
        try:
            command_id = await self.store.commands.started(user=user, source=source, action=action, scene=scene, target=target)
        except StoreWriteFailed as exc:
            if source not in UNRECORDED_SOURCES:
                raise  # an operator's command that cannot be recorded is refused (HTTP 503)
            # The schedule's own switching goes on without its record: the lights must follow the
            # schedule through a full disk; the store's health and this line say what is missing.
            log.error("%s (%s) sent without a record: the store cannot write: %s", action, target, exc)
            command_id = 0
        self.publish({"type": "command_started", "command_id": command_id, "user": user, "source": source,
                      "action": action, "scene": scene, "target": target})

        def result(outcome: ControllerOutcome) -> None:
            self.publish({"type": "result", "command_id": command_id, "controller": outcome.controller_id, **outcome.as_json()})

        with self.store.holding_observations():  # the switch first: readings are written after it
            outcome = await self.engine.command(keys, on_outcome=result)
        rows = [
            ResultRow(o.controller_id, o.status.value, o.error_kind, o.error, o.operations, o.channels, o.elapsed_s)
            for o in outcome.controllers.values()
        ]
        if command_id:
            try:
                await self.store.commands.finished(command_id, outcome.elapsed_s, rows)
            except StoreWriteFailed as exc:  # sent: the outcome stands; the record stays 'running' -> 'interrupted'
                log.error("command #%d was carried out but its outcome could not be recorded: %s", command_id, exc)
        report = CommandReport(command_id, scene or action, target or "", outcome, source, action, user, layer_id)
        log.info(
            "command #%d %s %s on %s by %s: %d confirmed, %d unconfirmed, %d failed in %.3f s",
            command_id, source, scene or action, target, user, outcome.count(Status.CONFIRMED),
            outcome.count(Status.UNCONFIRMED), outcome.count(Status.FAILED), outcome.elapsed_s,
            extra={"command": command_id, "user": user},
        )
        self.revision += 1
        self.publish({"type": "command", **report.as_json()})
        for service in self.services:
            try:
                service.command_done(report)
            except Exception:
                log.exception("service %s failed on command #%d", service.name, report.command_id)
        return report

    async def _expire_overrides(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = self.now()
            expired = [o for o in self.overrides if o.until is not None and o.until <= now]
            if not expired:
                continue
            try:
                await self.store.layers.clear([o.id for o in expired], by="expiry")
                self.overrides = [o for o in self.overrides if o not in expired]
                await self.reconcile(f"override {', '.join(f'#{o.id}' for o in expired)} expired", source="expiry")
            except Exception:
                log.exception("override expiry failed; retrying")

    # -- events ------------------------------------------------------------------------------

    def _on_engine_event(self, event: EngineEvent) -> None:
        if isinstance(event, ReadingEvent):
            if event.changed:
                self.store.observations.record_state_changes(event.controller_id, event.reading.at, event.changed)
                self.publish(
                    {
                        "type": "state",
                        "controller": event.controller_id,
                        "channels": {
                            ch: {"on": r.on, "level": r.level, "released": r.released, "held_by": r.held_by}
                            for ch, r in event.changed.items()
                        },
                    }
                )
            last = self._last_recorded.get(event.controller_id, 0.0)
            if event.reading.at - last >= READING_RECORD_INTERVAL_S:
                self._last_recorded[event.controller_id] = event.reading.at
                self.store.observations.record_reading(event.controller_id, event.reading)
        elif isinstance(event, LinkEvent):
            self.store.observations.record_link(event.controller_id, event.state.value, event.error)
            self.publish({"type": "link", "controller": event.controller_id, "state": event.state.value, "error": event.error})
        elif isinstance(event, ConvergedEvent):
            self.publish({"type": "converged", "controller": event.outcome.controller_id, **event.outcome.as_json()})
        for service in self.services:
            try:
                service.observe(event)
            except Exception:
                log.exception("service %s failed on %s", service.name, type(event).__name__)


    def publish(self, message: dict[str, Any]) -> None:
        """An event for the WebSocket's subscribers (console, federation), serialized once."""
        if not self.subscribers:
            return
        event = Published(message)
        for subscriber in list(self.subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("a subscriber failed")

    # -- views -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        controllers = {}
        online = 0
        for cid, rt in self.engine.runtimes.items():
            info = rt.info
            state = rt.link.state.value
            online += state == "online"
            reading = rt.reading
            controllers[cid] = {
                "protocol": info.controller.protocol,
                "site": info.site.id,
                "district": info.district.id,
                "link": state,
                "since": rt.link.since,
                "last_error": rt.link.last_error,
                "pending": rt.pending_count(),
                "handed_back": rt.handed_back_count(),
                "power_w": None if reading is None else reading.power_w,
                "energy_kwh": None if reading is None else reading.energy_kwh,
                "faults": [] if reading is None else sorted(reading.faults),
            }
        now = self.now()
        warnings = [] if self.schedule is None else self.schedule.calendar_warnings(now.date(), now.date() + timedelta(days=60))
        return {
            "installation": self.config.installation.name,
            "timezone": self.config.installation.timezone,
            "now": now.isoformat(timespec="seconds"),
            "calendar_warnings": warnings,
            "controllers_total": len(controllers),
            "controllers_online": online,
            "channels_pending": sum(c["pending"] for c in controllers.values()),
            "channels_handed_back": sum(c["handed_back"] for c in controllers.values()),
            "overrides": [
                {"id": o.id, "kind": o.kind, "scene": o.scene, "target": o.target, "user": o.user,
                 "until": iso_local(o.until, self.tz), "cap": o.cap}
                for o in self.overrides
            ],
            "controllers": controllers,
            "store": self.store.health().as_json(self.tz),
        }

    def metrics(self) -> dict[str, Any]:
        """The action plan's figures now (lightctl.services.reports.live)."""
        reports = self.config.reports
        settings = InspectionSettings(self.clock(), reports.inspections.stale_s, reports.energy.lamp_fault_below, self.curve)
        return live_metrics(self.inventory, observed_now(self.engine), self.config.installation.energy, settings)

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        """Run a background job with a strong reference kept until it ends."""

        async def run() -> None:
            await coro

        task = asyncio.create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
