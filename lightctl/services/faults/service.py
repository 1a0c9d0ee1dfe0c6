"""The fault service: readings, link changes and command outcomes in; faults, work orders and
notifications out, recorded in the store.

It sees only what the engine already observed (the runtime adapter, ``lightctl.runtime.faults``,
hands it each event); it never asks a device anything. Per reading: the rules
(``rules.evaluate``) against the desired state, then the tracker's state machine; per second
(``tick``): communication lost (``comm_lost_missed`` polls or push intervals without a reading,
while the engine finds the controller unreachable), commands unconfirmed past the convergence
deadline, the clearing hold-offs, shelves that expire. What changed is published at once and
recorded in batches (``flush``): the faults, their transitions, the work orders filed by the
severity rule and the notifications they owe, in one transaction.

Times are taken as arguments (``now`` in ms), so that tests freeze them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.model.desired import Desired
from lightctl.model.faults import FaultsConfig
from lightctl.model.maintenance import FaultRecord, WorkOrder
from lightctl.model.times import from_ms
from lightctl.model.values import ControllerReading, FaultKind
from lightctl.services.faults import notify
from lightctl.services.faults.catalogue import label
from lightctl.services.faults.lamps import BurningHours
from lightctl.services.faults.rules import EMPTY, Memory, evaluate
from lightctl.services.faults.spec import ControllerSpec, compile_specs
from lightctl.services.faults.tracker import Change, Tracker, UnknownFault
from lightctl.services.faults.views import Names, fault_json, order_json
from lightctl.services.faults.workorders import advance, file_order, title_for
from lightctl.store import Store, StoreWriteFailed
from lightctl.store import faults as fault_rows
from lightctl.store import outbox as outbox_rows
from lightctl.store import workorders as order_rows
from lightctl.store.faults import FaultEvent
from lightctl.store.sql import Connection
from schedules.calendars import OfficialCalendar

log = logging.getLogger("lightctl.faults")

HOURS_SAVED_EVERY_MS = 300_000
HISTORY_PRUNE_MS = 60_000
"""How often the openings history of keys quiet for an hour is dropped (memory stays flat)."""
NOTIFIED_FAULT_EVENTS = frozenset({"opened", "annunciated", "cleared"})
AUTO = "lightctl"
Publish = Callable[[dict[str, Any]], None]


class FaultActionRefused(ValueError):
    """An operator's action on a fault that cannot be carried out (unknown id, bad expiry)."""


class FaultService:
    def __init__(self, config: Config, inventory: Inventory, store: Store, *, publish: Publish | None = None) -> None:
        self.store = store
        self.publish: Publish = publish or (lambda message: None)
        self.zone = ZoneInfo(config.installation.timezone)
        self.installation = config.installation.name
        self.calendar = OfficialCalendar(config.schedule.official_years, log_missing=False)
        self._configure(config, inventory)
        self.tracker = Tracker(self.specs, self.config)
        self.hours = BurningHours(self.specs)
        self.memory: dict[str, Memory] = {}
        self.last_reading: dict[str, int] = {}
        self.offline: dict[str, tuple[int, str]] = {}
        """Controllers the engine finds unreachable: since when, and why."""
        self.push_limits: dict[str, float] = {}
        """Pushed controllers whose driver promises a reading at least this often (seconds)."""
        self.unconfirmed: dict[str, tuple[int, str]] = {}
        """Controllers whose last command or convergence did not confirm: since when, and why."""
        self.held: Callable[[str], bool] = lambda cid: False
        self.order_of_key: dict[str, int] = {}
        """Open work orders by the fault key they cover: a fault coming back joins its order."""
        self.orders_of_fault: dict[int, list[int]] = {}
        self._pending: list[Change] = []
        self._orders: list[tuple[WorkOrder, set[str]]] = []
        """Work orders filed by the severity rule, to be recorded, with the fault keys they cover."""
        self._links: list[tuple[int, int]] = []
        """(work order, fault) links to record: a fault that came back joins its open order."""
        self._flush_lock = asyncio.Lock()
        self._hours_saved = 0
        self.wake_notifier: Callable[[], None] = lambda: None
        self.eval_cpu_s = 0.0
        """CPU time spent on readings (the rules and the state machine), for the benchmark."""
        self.tick_cpu_s = 0.0
        """CPU time spent on the timers (``tick``)."""
        self.readings_seen = 0
        self._history_pruned = 0
        self.opened = 0
        """Faults opened since start."""

    def _configure(self, config: Config, inventory: Inventory) -> None:
        self.config: FaultsConfig = config.faults
        self.inventory = inventory
        self.specs: dict[str, ControllerSpec] = compile_specs(inventory, config.faults)
        self.names = Names(inventory)

    def reconfigure(self, config: Config, inventory: Inventory, now: int) -> None:
        """A reloaded config: new limits, crews, webhooks and inventory. Open faults stay, but
        those of controllers the config no longer has are cleared, saying why."""
        self._configure(config, inventory)
        self.tracker.specs, self.tracker.config, self.hours.specs = self.specs, self.config, self.specs
        for table in (self.memory, self.last_reading, self.offline, self.unconfirmed, self.push_limits):
            for cid in [c for c in table if c not in self.specs]:
                del table[cid]
        for cid in self.specs:
            self.last_reading.setdefault(cid, now)
        if retired := self.tracker.retire(now):
            log.info("config reload: %d open fault(s) of controllers no longer configured cleared", retired)
        self.drain(now)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, now: int) -> None:
        """Load the open faults, shelves, burning hours and open work orders' faults."""
        store = self.store
        records = await store.faults.open_faults()
        known = [r for r in records if r.controller_id is None or r.controller_id in self.specs]
        self.tracker.next_id = await store.faults.next_id()
        self.tracker.load(known, await store.faults.shelves(now))
        for rec in known:
            if rec.controller_id is None:
                self.tracker.metered.setdefault(rec.site_id, set())
        self.hours.load(await store.faults.hours())
        for order_id, fault_id, key in await store.work_orders.open_fault_links():
            self.order_of_key[key] = order_id
            self.orders_of_fault.setdefault(fault_id, []).append(order_id)
        for cid in self.specs:
            self.last_reading[cid] = now
        if known:
            log.info("%d open fault(s) taken back from the store; each is judged again", len(known))

    # -- what the engine observed --------------------------------------------------------------

    def reading(self, cid: str, reading: ControllerReading, desired: Mapping[str, Desired], held: bool, now: int) -> None:
        started = time.thread_time()
        self.readings_seen += 1
        self.last_reading[cid] = now
        if cid in self.offline:
            del self.offline[cid]
        tracker = self.tracker
        if tracker.by_controller.get(cid) and tracker.timed_open(cid, FaultKind.COMM_LOST):
            tracker.condition(cid, FaultKind.COMM_LOST, None, now)
        spec = self.specs.get(cid)
        if spec is not None:
            self.hours.observe(cid, reading, now)
            if reading.complete:
                if "voltage_l1_v" in reading.measurements and cid not in tracker.metered.get(spec.site_id, ()):
                    tracker.note_metered(cid)
                findings = evaluate(spec, desired, reading, self.memory.get(cid, EMPTY), held)
                if findings.memory is not EMPTY or cid in self.memory:
                    self.memory[cid] = findings.memory
                tracker.observe(cid, findings, desired, reading, held, now)
        self.eval_cpu_s += time.thread_time() - started

    def link(self, cid: str, online: bool, error: str | None, now: int) -> None:
        if online:
            self.offline.pop(cid, None)
        elif cid not in self.offline:
            self.offline[cid] = (now, error or "unreachable")

    def outcome(self, cid: str, confirmed: bool, detail: str | None, now: int) -> None:
        """A command's or a convergence's result for one controller."""
        if confirmed:
            if self.unconfirmed.pop(cid, None) is not None and self.tracker.timed_open(cid, FaultKind.UNCONFIRMED):
                self.tracker.condition(cid, FaultKind.UNCONFIRMED, None, now)
        elif cid in self.specs:
            since = self.unconfirmed.get(cid)
            self.unconfirmed[cid] = (since[0] if since else now, detail or "not confirmed")

    def expect_pushes(self, cid: str, interval_s: float | None) -> None:
        """A controller whose driver pushes a reading at least every ``interval_s`` (None: pushes
        come on change only, and silence says nothing)."""
        if interval_s is None:
            self.push_limits.pop(cid, None)
        else:
            self.push_limits[cid] = interval_s

    def tick(self, now: int) -> None:
        """Timed conditions, hold-offs and shelves (called about once a second)."""
        started = time.thread_time()
        tracker = self.tracker
        missed = self.config.comm_lost_missed
        for cid, (since, error) in list(self.offline.items()):
            spec = self.specs.get(cid)
            if spec is None:
                continue
            silent = now - self.last_reading.get(cid, since)
            if silent >= missed * spec.poll_s * 1000 and now - since >= (missed - 1) * spec.poll_s * 1000:
                evidence = f"no reading for {silent / 1000:.0f} s ({missed} polls of {spec.poll_s:g} s missed): {error}"
                tracker.condition(cid, FaultKind.COMM_LOST, evidence, now)
        for cid, interval in self.push_limits.items():
            if cid in self.offline:
                continue
            if self.held(cid):
                self.last_reading[cid] = now  # a show pauses pushes: its silence is ours
                continue
            silent = now - self.last_reading.get(cid, now)
            if silent >= missed * interval * 1000:
                evidence = f"no pushed reading for {silent / 1000:.0f} s ({missed} intervals of {interval:g} s)"
                tracker.condition(cid, FaultKind.COMM_LOST, evidence, now)
        deadline = self.config.convergence_deadline_s * 1000
        for cid, (since, detail) in self.unconfirmed.items():
            if now - since >= deadline and not self.held(cid):
                evidence = f"not confirmed for {(now - since) / 60000:.0f} min: {detail}"
                tracker.condition(cid, FaultKind.UNCONFIRMED, evidence, now)
        tracker.tick(now)
        if now - self._history_pruned >= HISTORY_PRUNE_MS:
            self._history_pruned = now
            tracker.forget_history(now)
        self.drain(now)
        self.tick_cpu_s += time.thread_time() - started

    # -- changes: published now, recorded in batches --------------------------------------------

    def drain(self, now: int) -> None:
        changes = self.tracker.drain()
        if not changes:
            return
        for change in changes:
            if change.event == "opened":
                self.opened += 1
            self.publish({"type": "fault", "event": change.event, "fault": self.fault_view(change.fault, now)})
            if change.event in ("opened", "annunciated") and change.fault.alarm(now):
                self._auto_file(change.fault, now)
        self._pending.extend(changes)

    def pending(self) -> bool:
        return bool(self._pending or self.tracker.dirty or self._orders or self._links)

    async def flush(self, now: int) -> None:
        """Record what changed since the last flush, in one transaction; a failure keeps it all
        for the next (and raises ``StoreWriteFailed``)."""
        async with self._flush_lock:
            self.drain(now)
            changes, self._pending = self._pending, []
            orders, self._orders = self._orders, []
            links, self._links = self._links, []
            ids = set(self.tracker.dirty) | {c.fault.id for c in changes}
            self.tracker.dirty.clear()
            records = {c.fault.id: c.fault for c in changes}
            records.update((fid, self.tracker.by_id[fid]) for fid in ids if fid in self.tracker.by_id)
            rows = list(records.values())
            events = [FaultEvent(c.fault.id, now, c.event, c.person, c.note) for c in changes]
            notes = [n for c in changes for n in self._fault_notifications(c, now)]
            hours = self.hours.take_dirty() if now - self._hours_saved >= HOURS_SAVED_EVERY_MS else []

            def job(conn: Connection) -> None:
                fault_rows.upsert(conn, rows, now)
                fault_rows.add_events(conn, events)
                for order, _keys in orders:
                    order_rows.insert(conn, order, now)
                    notes.extend(self.order_notifications(order, "filed", now))
                for order_id, fault_id in links:
                    order_rows.link(conn, order_id, [fault_id])
                outbox_rows.enqueue(conn, notes, now)
                if hours:
                    fault_rows.save_hours(conn, hours, now)

            try:
                await self.store.write(job)
            except StoreWriteFailed:
                self._pending[:0] = changes
                self._orders[:0] = orders
                self._links[:0] = links
                self.tracker.dirty |= ids
                self.hours.dirty |= {(h.controller_id, h.channel_id) for h in hours}
                raise
            if hours:
                self._hours_saved = now
            for rec in rows:
                rec.saved_seen = rec.last_seen
            for order, keys in orders:
                for key in keys:
                    self.order_of_key[key] = order.id
                for fid in order.faults:
                    self.orders_of_fault.setdefault(fid, []).append(order.id)
                self.publish({"type": "workorder", "event": "filed", "workorder": self.order_view(order, now)})
            if notes:
                self.wake_notifier()

    async def save_hours(self, now: int) -> None:
        self._hours_saved = 0
        await self.flush(now)

    # -- notifications --------------------------------------------------------------------------

    def _fault_notifications(self, change: Change, now: int) -> list[outbox_rows.Notification]:
        rec = change.fault
        if change.event not in NOTIFIED_FAULT_EVENTS or not self.config.webhooks:
            return []
        if change.event != "cleared" and not rec.alarm(now):
            return []
        if change.event == "cleared" and rec.parent_id is not None:
            return []
        crews = [c.id for c in notify.crews_covering(rec.district_id, self.config.crews)]
        hooks = notify.routes("fault", rec.severity, crews, self.config.webhooks)
        if not hooks:
            return []
        body = self._body(f"fault.{change.event}", {"fault": self.fault_view(rec, now), "crews": crews})
        return [outbox_rows.Notification(h.id, f"fault.{change.event}", body) for h in hooks]

    def order_notifications(self, order: WorkOrder, event: str, now: int) -> list[outbox_rows.Notification]:
        if not self.config.webhooks:
            return []
        crews = [order.crew_id] if order.crew_id else [c.id for c in notify.crews_covering(order.district_id, self.config.crews)]
        hooks = notify.routes("workorder", order.severity, crews, self.config.webhooks)
        if not hooks:
            return []
        body = self._body(f"workorder.{event}", {"workorder": self.order_view(order, now), "crews": crews})
        return [outbox_rows.Notification(h.id, f"workorder.{event}", body) for h in hooks]

    def _body(self, event: str, data: dict[str, Any]) -> str:
        return json.dumps({"event": event, "installation": self.installation, **data}, ensure_ascii=False)

    # -- views ---------------------------------------------------------------------------------

    def fault_view(self, rec: FaultRecord, now: int) -> dict[str, Any]:
        return fault_json(rec, self.names, self.zone, now, self.orders_of_fault.get(rec.id, ()))

    def order_view(self, order: WorkOrder, now: int, faults: Mapping[int, FaultRecord] | None = None) -> dict[str, Any]:
        known = dict(faults or {})
        for fid in order.faults:
            if fid not in known and fid in self.tracker.by_id:
                known[fid] = self.tracker.by_id[fid]
        return order_json(order, self.names, self.zone, now, known)

    def active(self, now: int) -> list[FaultRecord]:
        """Open faults, most urgent first: alarms before shelved and suppressed ones."""
        faults = list(self.tracker.by_id.values())
        faults.sort(key=lambda r: (not r.alarm(now), r.severity.rank, -r.opened_at))
        return faults

    # -- operators: faults -----------------------------------------------------------------------

    def _check_store(self) -> None:
        health = self.store.health()
        if not health.healthy:
            raise StoreWriteFailed(f"the store cannot write ({health.last_error}); nothing was changed", RuntimeError(health.last_error))

    async def acknowledge(self, fault_id: int, by: str, now: int, note: str | None = None) -> FaultRecord:
        self._check_store()
        try:
            rec = self.tracker.acknowledge(fault_id, by, now, note)
        except UnknownFault:
            rec = await self._closed_fault(fault_id)
            if rec.acked_at is None:
                rec.acked_at, rec.acked_by = now, by
                await self._write_closed(rec, FaultEvent(rec.id, now, "acknowledged", by, note), now)
            return rec
        await self.flush(now)
        return rec

    async def shelve(self, fault_id: int, by: str, reason: str, until: int, now: int) -> FaultRecord:
        if not reason.strip():
            raise FaultActionRefused("shelving needs a reason (e.g. 'bridge under repair')")
        if until <= now:
            raise FaultActionRefused(f"the shelf's expiry {from_ms(until, self.zone).isoformat()} is not in the future")
        self._check_store()
        try:
            rec = self.tracker.shelve(fault_id, by, reason, until, now)
        except UnknownFault:
            raise FaultActionRefused(f"fault #{fault_id} is not active: only an active fault can be shelved") from None
        await self.flush(now)
        return rec

    async def unshelve(self, fault_id: int, by: str, now: int) -> FaultRecord:
        self._check_store()
        try:
            rec = self.tracker.unshelve(fault_id, by, now)
        except UnknownFault:
            raise FaultActionRefused(f"fault #{fault_id} is not active") from None
        await self.flush(now)
        return rec

    async def _closed_fault(self, fault_id: int) -> FaultRecord:
        rec = await self.store.faults.get(fault_id)
        if rec is None:
            raise FaultActionRefused(f"no fault #{fault_id}")
        return rec

    async def _write_closed(self, rec: FaultRecord, event: FaultEvent, now: int) -> None:
        def job(conn: Connection) -> None:
            fault_rows.upsert(conn, [rec], now)
            fault_rows.add_events(conn, [event])

        await self.store.write(job)
        self.publish({"type": "fault", "event": event.event, "fault": self.fault_view(rec, now)})

    async def relamp(self, cid: str, channel_id: str, by: str, now: int, note: str | None = None) -> float:
        """Lamps replaced on a channel: its burning hours start again (recorded with who and the
        hours the old lamps had); returns those hours."""
        self._check_store()
        hours = self.hours.relamp(cid, channel_id, now)
        row = fault_rows.ChannelHours(cid, channel_id, 0.0, now)

        def job(conn: Connection) -> None:
            fault_rows.save_hours(conn, [row], now)
            fault_rows.add_relamping(conn, cid, channel_id, now, by, hours, note)

        await self.store.write(job)
        return hours

    async def fault(self, fault_id: int) -> FaultRecord:
        rec = self.tracker.by_id.get(fault_id)
        return rec if rec is not None else await self._closed_fault(fault_id)

    # -- work orders filed by the severity rule ----------------------------------------------

    def _auto_file(self, rec: FaultRecord, now: int) -> None:
        """An alarm of a severity in ``auto_file`` files a work order by itself, one per
        condition: a fault of a key whose order is still open joins that order."""
        if rec.severity not in self.config.auto_file:
            return
        order_id = self.order_of_key.get(rec.key)
        if order_id is not None:
            self.orders_of_fault.setdefault(rec.id, []).append(order_id)
            self._links.append((order_id, rec.id))
            return
        for order, keys in self._orders:
            if rec.key in keys:
                order.faults.append(rec.id)
                return
        order = file_order(
            source="fault", title=title_for([rec], lambda r: label(r.kind)), severity=rec.severity,
            filed=from_ms(now, self.zone), by=f"{AUTO} (auto: {rec.severity.value})", config=self.config,
            calendar=self.calendar, faults=[rec], note="filed by the severity rule",
        )
        if self.config.auto_dispatch:
            crews = notify.crews_covering(order.district_id, self.config.crews)
            if len(crews) == 1:
                order.crew_id = crews[0].id
                order.steps.append(advance(order, "dispatch", AUTO, now, crew=crews[0].id, note="the crew covering the district"))
        self._orders.append((order, {rec.key}))
