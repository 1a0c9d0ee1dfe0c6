"""Work orders as the crews and the duty operator handle them: filing (from one fault, several
related ones, or a 12319 hotline report), dispatch, handling, feedback with a photo, verification
and closure, deferral; each step recorded with its time, person and note, told on the WebSocket
and to the webhooks, in one transaction with the notifications it owes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightctl.model.faults import Severity
from lightctl.model.maintenance import FaultRecord, WorkOrder
from lightctl.model.storage import files_dir
from lightctl.model.times import from_ms
from lightctl.services.faults.catalogue import label
from lightctl.services.faults.service import FaultService
from lightctl.services.faults.workorders import (
    OPEN,
    WorkOrderRefused,
    advance,
    crew_for,
    file_order,
    title_for,
)
from lightctl.store import outbox as outbox_rows
from lightctl.store import workorders as order_rows
from lightctl.store.sql import Connection

SOURCES = ("fault", "hotline", "manual")
NOTIFIED_STEPS = {"dispatch": "dispatched", "feedback": "handled", "close": "closed", "defer": "deferred", "reject": "rejected"}
PHOTO_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MAX_PHOTO_BYTES = 12 * 1024 * 1024


class WorkOrderDesk:
    def __init__(self, faults: FaultService) -> None:
        self.faults = faults
        self.photo_dir = files_dir(faults.store.path) / "photos"  # beside a SQLite file; PostgreSQL: the state directory

    # -- reading --------------------------------------------------------------------------------

    async def get(self, order_id: int) -> WorkOrder:
        order = await self.faults.store.work_orders.get(order_id)
        if order is None:
            raise WorkOrderRefused(f"no work order #{order_id}")
        return order

    async def views(self, orders: Sequence[WorkOrder], now: int) -> list[dict[str, Any]]:
        """Orders as JSON with their faults' evidence (one query for all of them)."""
        wanted = {fid for order in orders for fid in order.faults if fid not in self.faults.tracker.by_id}
        known = await self.faults.store.faults.by_ids(wanted)
        return [self.faults.order_view(order, now, known) for order in orders]

    def crews_of(self, user: str, crew: str | None = None) -> list[str]:
        """The crews a user works in: the crew of their account (users and roles), then the
        crews whose members name them in the config."""
        found = [crew] if crew is not None else []
        return found + [c.id for c in self.faults.config.crews if user in c.members and c.id not in found]

    # -- filing ---------------------------------------------------------------------------------

    async def file(
        self,
        *,
        by: str,
        now: int,
        fault_ids: Sequence[int] = (),
        title: str | None = None,
        description: str | None = None,
        severity: Severity | None = None,
        source: str | None = None,
        reference: str | None = None,
        site: str | None = None,
        controller: str | None = None,
        channel: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        crew: str | None = None,
        note: str | None = None,
    ) -> WorkOrder:
        service = self.faults
        faults = [await self._fault(fid) for fid in fault_ids]
        for rec in faults:
            open_orders = [o for o in service.orders_of_fault.get(rec.id, []) if o in service.order_of_key.values()]
            if open_orders:
                raise WorkOrderRefused(f"fault #{rec.id} is already in open work order #{open_orders[0]}")
        source = source or ("fault" if faults else "hotline" if reference else "manual")
        if source not in SOURCES:
            raise WorkOrderRefused(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
        if (source == "fault") != bool(faults):
            raise WorkOrderRefused("a work order of source 'fault' names its faults, and only such an order does")
        if not faults and severity is None:
            raise WorkOrderRefused("a work order without faults needs its severity (emergency, serious or ordinary)")
        if severity is None:
            severity = min((f.severity for f in faults), key=lambda s: s.rank)
        district, lighting = None, None
        if not faults:
            district, site, lat, lon, lighting = self._place(site, controller, channel, lat, lon)
            if title is None:
                raise WorkOrderRefused("a work order without faults needs a title (what was reported)")
        order = file_order(
            source=source, title=title or title_for(faults, lambda r: label(r.kind)), severity=severity,
            filed=from_ms(now, service.zone), by=by, config=service.config, calendar=service.calendar, faults=faults,
            description=description, reference=reference, district=district, site=site, controller=controller,
            channel=channel, lat=lat, lon=lon, lighting=lighting, note=note,
        )
        if crew is not None:
            crew_for(order, crew, service.config.crews)
            order.crew_id = crew
            order.steps.append(advance(order, "dispatch", by, now, crew=crew))
        notes: list[outbox_rows.Notification] = []

        def job(conn: Connection) -> None:
            order_rows.insert(conn, order, now)
            notes.extend(service.order_notifications(order, "filed", now))
            if crew is not None:
                notes.extend(service.order_notifications(order, "dispatched", now))
            outbox_rows.enqueue(conn, notes, now)

        await service.store.write(job)
        for rec in faults:
            service.orders_of_fault.setdefault(rec.id, []).append(order.id)
            if rec.active:
                service.order_of_key[rec.key] = order.id
        self._told(order, "filed", now, notes)
        return order

    def _place(
        self, site: str | None, controller: str | None, channel: str | None, lat: float | None, lon: float | None
    ) -> tuple[str | None, str | None, float | None, float | None, str | None]:
        """(district, site, lat, lon, lighting) of a report that names a place, checked."""
        inventory = self.faults.inventory
        lighting = None
        if controller is not None:
            info = inventory.controllers.get(controller)
            if info is None:
                raise WorkOrderRefused(f"unknown controller {controller!r}")
            if channel is not None:
                if (controller, channel) not in inventory.channels:
                    raise WorkOrderRefused(f"controller {controller!r} has no channel {channel!r}")
                lighting = self.faults.specs[controller].channels[channel].lighting
            if site is not None and site != info.site.id:
                raise WorkOrderRefused(f"controller {controller!r} is at site {info.site.id!r}, not {site!r}")
            site = info.site.id
        elif channel is not None:
            raise WorkOrderRefused("a channel is named with its controller")
        if site is not None:
            found = inventory.sites.get(site)
            if found is None:
                raise WorkOrderRefused(f"unknown site {site!r}")
            district = next(d.id for d in inventory.districts.values() if any(s.id == site for s in d.sites))
            return district, site, lat if lat is not None else found.location.lat, lon if lon is not None else found.location.lon, lighting
        if lat is None or lon is None:
            raise WorkOrderRefused("a report needs a place: a site, a controller (and channel), or lat and lon")
        return None, None, lat, lon, lighting

    async def _fault(self, fault_id: int) -> FaultRecord:
        rec = self.faults.tracker.by_id.get(fault_id) or await self.faults.store.faults.get(fault_id)
        if rec is None:
            raise WorkOrderRefused(f"no fault #{fault_id}")
        return rec

    # -- steps ----------------------------------------------------------------------------------

    async def step(
        self,
        order_id: int,
        step: str,
        *,
        by: str,
        now: int,
        note: str | None = None,
        crew: str | None = None,
        photo: str | None = None,
        until: int | None = None,
    ) -> WorkOrder:
        """Take one step on an order (``dispatch`` needs the crew, ``defer`` a reason and a new
        deadline, ``close`` with a fault still active the verifier's reason in ``note``)."""
        service = self.faults
        order = await self.get(order_id)
        if step == "dispatch":
            if crew is None:
                raise WorkOrderRefused("dispatch needs the crew (派遣 to whom?)")
            crew_for(order, crew, service.config.crews)
        if step == "feedback" and photo is not None and await service.store.work_orders.photo(photo) is None:
            raise WorkOrderRefused(f"no photo {photo} (upload it first: POST /api/v1/photos)")
        if step == "defer":
            if not (note or "").strip():
                raise WorkOrderRefused("a deferral needs its reason")
            if until is None or until <= max(now, order.deadline):
                raise WorkOrderRefused("a deferral needs a new deadline later than the one in force")
        active = [fid for fid in order.faults if (rec := service.tracker.by_id.get(fid)) is not None and rec.active]
        if step == "close" and active and not (note or "").strip():
            named = ", ".join(f"#{fid} ({label(service.tracker.by_id[fid].kind)})" for fid in active)
            raise WorkOrderRefused(f"fault {named} is still active: closing needs the verifier's reason")
        taken = advance(order, step, by, now, note=note, crew=crew or order.crew_id, photo=photo)
        if step == "dispatch":
            order.crew_id = crew
        elif step == "close":
            order.closed_by, order.close_reason, order.closed_with_active_fault = by, note, bool(active)
        elif step == "defer":
            order.deferred_by, order.defer_reason, order.deferred_until = by, note, until
        event = NOTIFIED_STEPS.get(step)
        notes = service.order_notifications(order, event, now) if event else []

        def job(conn: Connection) -> None:
            order_rows.update(conn, order, now)
            order_rows.add_step(conn, order.id, taken)
            outbox_rows.enqueue(conn, notes, now)

        await service.store.write(job)
        order.steps.append(taken)
        if order.state.value == "closed":
            for key in [k for k, oid in service.order_of_key.items() if oid == order.id]:
                del service.order_of_key[key]
        self._told(order, event or step, now, notes)
        return order

    async def check_overdue(self, now: int) -> int:
        """Tell (once) of every open order past its deadline; how many were told."""
        service = self.faults
        late = [o for o in await service.store.work_orders.query(open_only=True, limit=10_000)
                if o.overdue(now) and o.overdue_notified_at is None and o.state in OPEN]
        for order in late:
            order.overdue_notified_at = now
            notes = service.order_notifications(order, "overdue", now)

            def job(conn: Connection, order: WorkOrder = order, notes: list[outbox_rows.Notification] = notes) -> None:
                order_rows.update(conn, order, now)
                outbox_rows.enqueue(conn, notes, now)

            await service.store.write(job)
            self._told(order, "overdue", now, notes)
        return len(late)

    def _told(self, order: WorkOrder, event: str, now: int, notes: Sequence[outbox_rows.Notification]) -> None:
        self.faults.publish({"type": "workorder", "event": event, "workorder": self.faults.order_view(order, now)})
        if notes:
            self.faults.wake_notifier()

    # -- photos ---------------------------------------------------------------------------------

    async def store_photo(self, data: bytes, content_type: str, by: str, now: int) -> str:
        """Keep a photo by the SHA-256 of its bytes (the same photo twice is kept once)."""
        if content_type not in PHOTO_TYPES:
            raise WorkOrderRefused(f"a photo is one of {', '.join(PHOTO_TYPES)}, not {content_type!r}")
        if not data:
            raise WorkOrderRefused("the photo is empty")
        if len(data) > MAX_PHOTO_BYTES:
            raise WorkOrderRefused(f"the photo is {len(data) / 1e6:.1f} MB; at most {MAX_PHOTO_BYTES / 1e6:.0f} MB")
        digest = hashlib.sha256(data).hexdigest()
        path = self.photo_path(digest)
        await asyncio.to_thread(_write_once, path, data)
        await self.faults.store.write(lambda conn: order_rows.add_photo(conn, digest, content_type, len(data), now, by))
        return digest

    def photo_path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise WorkOrderRefused(f"not a photo's SHA-256: {digest!r}")
        return self.photo_dir / digest[:2] / digest


def _write_once(path: Path, data: bytes) -> None:
    """Write a content-addressed file once, atomically (a crash leaves no half photo)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)

