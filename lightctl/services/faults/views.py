"""Faults and work orders as people and pages see them: JSON complete enough that a crew's phone
needs no second request per row (names, coordinates, evidence, deadlines with ``overdue``, times
in the installation's zone), and CSV rows for export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

from lightctl.inventory.index import Inventory
from lightctl.model.maintenance import FaultRecord, WorkOrder
from lightctl.model.times import iso_local
from lightctl.services.faults.catalogue import KINDS


class Names:
    """Names of the inventory's places, falling back to the id for what the config no longer has."""

    def __init__(self, inventory: Inventory) -> None:
        self.districts = {d.id: d.name for d in inventory.districts.values()}
        self.sites = {s.id: s.name for s in inventory.sites.values()}
        self.controllers = {cid: info.controller.name or cid for cid, info in inventory.controllers.items()}
        self.channels = {key: info.channel.name or key[1] for key, info in inventory.channels.items()}

    def location(
        self, district: str | None, site: str | None, controller: str | None, channel: str | None, lat: float | None, lon: float | None
    ) -> dict[str, Any]:
        return {
            "district": None if district is None else {"id": district, "name": self.districts.get(district, district)},
            "site": None if site is None else {"id": site, "name": self.sites.get(site, site)},
            "controller": None if controller is None else {"id": controller, "name": self.controllers.get(controller, controller)},
            "channel": None
            if channel is None or controller is None
            else {"id": channel, "name": self.channels.get((controller, channel), channel)},
            "lat": lat,
            "lon": lon,
        }


def fault_json(
    rec: FaultRecord, names: Names, zone: tzinfo, now_ms: int, work_orders: Sequence[int] = ()
) -> dict[str, Any]:
    spec = KINDS.get(rec.kind)
    return {
        "id": rec.id,
        "kind": rec.kind.value,
        "label": {"zh": spec.zh if spec else rec.kind.value, "en": spec.en if spec else rec.kind.value},
        "severity": rec.severity.value,
        "status": rec.status(now_ms).value,
        "alarm": rec.alarm(now_ms),
        "location": names.location(rec.district_id, rec.site_id, rec.controller_id, rec.channel_id, rec.lat, rec.lon),
        "evidence": rec.evidence,
        "first_seen": iso_local(rec.opened_at, zone),
        "last_seen": iso_local(rec.last_seen, zone),
        "occurrences": rec.occurrences,
        "chattering": rec.chattering,
        "suppressed_by": rec.parent_id,
        "acknowledged": None if rec.acked_at is None else {"at": iso_local(rec.acked_at, zone), "by": rec.acked_by},
        "shelved": None
        if not rec.shelved(now_ms)
        else {"until": iso_local(rec.shelved_until, zone), "by": rec.shelved_by, "reason": rec.shelve_reason},
        "cleared_at": iso_local(rec.cleared_at, zone),
        "cleared_how": rec.cleared_how,
        "lighting": rec.lighting,
        "luminaires": rec.luminaires,
        "work_orders": list(work_orders),
    }


def order_json(
    order: WorkOrder, names: Names, zone: tzinfo, now_ms: int, faults: Mapping[int, FaultRecord] | None = None
) -> dict[str, Any]:
    """``faults``: the order's faults where known (their evidence and state go with the order)."""
    linked = []
    for fid in order.faults:
        rec = faults.get(fid) if faults is not None else None
        linked.append(
            {"id": fid}
            if rec is None
            else {"id": fid, "kind": rec.kind.value, "evidence": rec.evidence, "active": rec.active,
                  "channel": rec.channel_id, "controller": rec.controller_id}
        )
    return {
        "id": order.id,
        "source": order.source,
        "reference": order.reference,
        "title": order.title,
        "description": order.description,
        "severity": order.severity.value,
        "state": order.state.value,
        "location": names.location(order.district_id, order.site_id, order.controller_id, order.channel_id, order.lat, order.lon),
        "lighting": order.lighting,
        "crew": order.crew_id,
        "filed": {"at": iso_local(order.filed_at, zone), "by": order.filed_by},
        "due": {
            "at": iso_local(order.due_at, zone),
            "basis": order.due_basis,
            "estimated": order.due_estimated,
            "deadline": iso_local(order.deadline, zone),
        },
        "overdue": order.overdue(now_ms),
        "dispatched_at": iso_local(order.dispatched_at, zone),
        "handling_at": iso_local(order.handling_at, zone),
        "handled_at": iso_local(order.handled_at, zone),
        "verified_at": iso_local(order.verified_at, zone),
        "closed": None
        if order.closed_at is None
        else {"at": iso_local(order.closed_at, zone), "by": order.closed_by, "reason": order.close_reason,
              "with_active_fault": order.closed_with_active_fault},
        "deferred": None
        if order.deferred_at is None
        else {"at": iso_local(order.deferred_at, zone), "by": order.deferred_by, "reason": order.defer_reason,
              "until": iso_local(order.deferred_until, zone)},
        "faults": linked,
        "steps": [
            {"step": s.step, "at": iso_local(s.at, zone), "person": s.person, "crew": s.crew_id, "note": s.note, "photo": s.photo}
            for s in order.steps
        ],
    }


FAULT_CSV_COLUMNS = (
    "id", "kind", "severity", "status", "district", "site", "controller", "channel", "lat", "lon", "lighting",
    "luminaires", "first_seen", "last_seen", "occurrences", "evidence", "acknowledged_at", "acknowledged_by",
    "shelved_until", "shelve_reason", "suppressed_by", "chattering", "cleared_at", "cleared_how",
)
ORDER_CSV_COLUMNS = (
    "id", "source", "reference", "title", "severity", "state", "district", "site", "controller", "channel", "lat",
    "lon", "lighting", "crew", "filed_at", "filed_by", "due_at", "due_basis", "due_estimated", "deferred_until",
    "defer_reason", "dispatched_at", "handling_at", "handled_at", "verified_at", "closed_at", "closed_by",
    "close_reason", "closed_with_active_fault", "overdue", "faults",
)


def fault_csv_row(rec: FaultRecord, zone: tzinfo, now_ms: int) -> list[Any]:
    return [
        rec.id, rec.kind.value, rec.severity.value, rec.status(now_ms).value, rec.district_id, rec.site_id,
        rec.controller_id or "", rec.channel_id or "", rec.lat, rec.lon, rec.lighting, rec.luminaires,
        iso_local(rec.opened_at, zone), iso_local(rec.last_seen, zone), rec.occurrences, rec.evidence,
        iso_local(rec.acked_at, zone) or "", rec.acked_by or "", iso_local(rec.shelved_until, zone) or "",
        rec.shelve_reason or "", rec.parent_id or "", rec.chattering, iso_local(rec.cleared_at, zone) or "",
        rec.cleared_how or "",
    ]


def order_csv_row(order: WorkOrder, zone: tzinfo, now_ms: int) -> list[Any]:
    def t(ms: int | None) -> str:
        return iso_local(ms, zone) or ""

    return [
        order.id, order.source, order.reference or "", order.title, order.severity.value, order.state.value,
        order.district_id or "", order.site_id or "", order.controller_id or "", order.channel_id or "",
        "" if order.lat is None else order.lat, "" if order.lon is None else order.lon, order.lighting or "",
        order.crew_id or "", t(order.filed_at), order.filed_by, t(order.due_at), order.due_basis, order.due_estimated,
        t(order.deferred_until), order.defer_reason or "", t(order.dispatched_at), t(order.handling_at),
        t(order.handled_at), t(order.verified_at), t(order.closed_at), order.closed_by or "",
        order.close_reason or "", order.closed_with_active_fault, order.overdue(now_ms),
        " ".join(str(f) for f in order.faults),
    ]
