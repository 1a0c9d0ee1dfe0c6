"""Faults and work orders handled from either level, one owner per record: the district.

A fault or work order lives in the district whose controller it is about; the city never keeps a
record of its own. The city knows each one by the last view its district sent (the ``fault`` and
``workorder`` events of the district's outbox, :mod:`lightctl.federation.events`), kept in a
:class:`CaseBook`; an action taken at the city (acknowledge, shelve, file a work order, a step of
one) is a request to the owning district (action ``case``), carried out there by the same fault
service and work-order desk as a local crew's, in the city user's name, and answered with the
record's new view. Two people acting on one record at the two levels meet in the district's one
service, which takes one action after the other and refuses the one that no longer applies.

At the city a record's id is ``<district>:<id>`` (ids are the district's own numbers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightctl.model.faults import Severity
from lightctl.model.times import now_ms
from lightctl.runtime.commands import CommandRefused
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.faults import Faults
from lightctl.services.faults.service import FaultActionRefused
from lightctl.services.faults.workorders import WorkOrderRefused
from lightctl.services.reports.sources import CaseCounts

CaseOp = Literal["ack", "shelve", "unshelve", "file", "step"]
STEPS = ("dispatch", "handle", "feedback", "verify", "reject", "close", "defer")


class CaseRequest(BaseModel):
    """One action on a district's fault or work order (``id``: the district's number)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: CaseOp
    id: int | None = Field(default=None, ge=1)
    """The fault (ack, shelve, unshelve) or work order (step); none for ``file``."""
    step: Literal["dispatch", "handle", "feedback", "verify", "reject", "close", "defer"] | None = None
    faults: list[int] = []
    """file: the district's faults the order is for."""
    note: str | None = Field(default=None, max_length=2000)
    reason: str | None = Field(default=None, max_length=2000)
    until: int | None = None
    """UTC ms: shelve's expiry, defer's new deadline."""
    crew: str | None = Field(default=None, max_length=100)
    photo: str | None = Field(default=None, max_length=100)
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    severity: Severity | None = None


# --------------------------------------------------------------------------- the district


def faults_service(daemon: Daemon) -> Faults:
    for service in daemon.services:
        if isinstance(service, Faults):
            return service
    raise CommandRefused("the fault service is not running in this district's daemon")


async def carry_out(daemon: Daemon, case: CaseRequest, user: str) -> dict[str, Any]:
    """Take ``case`` through the district's own service and desk; the record's new view."""
    faults = faults_service(daemon)
    service, desk = faults.service, faults.desk
    now = now_ms()
    try:
        if case.op == "file":
            order = await desk.file(by=user, now=now, fault_ids=case.faults, title=case.title, description=case.description,
                                    severity=case.severity, crew=case.crew, note=case.note)
            (view,) = await desk.views([order], now)
            return view
        if case.id is None:
            raise CommandRefused(f"'{case.op}' needs the id of the record")
        if case.op == "step":
            if case.step is None:
                raise CommandRefused("a work order's step needs its name")
            order = await desk.step(case.id, case.step, by=user, now=now, note=case.note or case.reason, crew=case.crew,
                                    photo=case.photo, until=case.until)
            (view,) = await desk.views([order], now)
            return view
        if case.op == "ack":
            rec = await service.acknowledge(case.id, user, now, case.note)
        elif case.op == "shelve":
            if not case.reason or case.until is None:
                raise CommandRefused("shelving needs a reason and an expiry")
            rec = await service.shelve(case.id, user, case.reason, case.until, now)
        else:
            rec = await service.unshelve(case.id, user, now)
        return service.fault_view(rec, now)
    except (FaultActionRefused, WorkOrderRefused) as exc:
        raise CommandRefused(str(exc)) from None


# --------------------------------------------------------------------------- the city


def city_id(district: str, local_id: object) -> str:
    return f"{district}:{local_id}"


def split_id(text: str) -> tuple[str, int]:
    """``d1:17`` -> ("d1", 17); a ValueError that says what a city id looks like."""
    district, _, number = text.rpartition(":")
    if not district or not number.isdigit() or int(number) < 1:
        raise ValueError(f"{text!r} is not a record id of the city (<district>:<number>, e.g. yuzhong:17)")
    return district, int(number)


def _ms(text: Any) -> int | None:
    """A view's ISO time (with its offset) as UTC ms; None when absent."""
    return None if not isinstance(text, str) else round(datetime.fromisoformat(text).timestamp() * 1000)


def _as_city_view(district: str, view: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A district's view of a record, with ids that are unique at the city."""
    out = dict(view)
    out["district_id"] = district
    out["local_id"] = view.get("id")
    out["id"] = city_id(district, view.get("id"))
    if kind == "fault":
        out["work_orders"] = [city_id(district, o) for o in view.get("work_orders", [])]
        if out.get("suppressed_by") is not None:
            out["suppressed_by"] = city_id(district, view["suppressed_by"])
    else:
        out["faults"] = [{**f, "id": city_id(district, f.get("id"))} for f in view.get("faults", []) if isinstance(f, dict)]
    return out


class CaseBook:
    """The last view of each district's faults and work orders, as their events said."""

    def __init__(self) -> None:
        self.faults: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}

    def take(self, district: str, kind: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """A ``fault`` or ``workorder`` event (or an answer's view); the record as the city shows it."""
        if kind == "fault" and isinstance(body.get("fault"), dict):
            view = _as_city_view(district, body["fault"], "fault")
            self.faults[view["id"]] = view
            return view
        if kind == "workorder" and isinstance(body.get("workorder"), dict):
            view = _as_city_view(district, body["workorder"], "workorder")
            self.orders[view["id"]] = view
            return view
        return None

    def replay(self, events: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
        """(district, kind, body) of the recorded events, oldest first."""
        for district, kind, body in events:
            self.take(district, kind, body)

    def fault_list(self, *, open_only: bool = False, district: str | None = None) -> list[dict[str, Any]]:
        found = [v for v in self.faults.values() if (district is None or v["district_id"] == district)
                 and (not open_only or v.get("cleared_at") is None)]
        return sorted(found, key=lambda v: str(v.get("first_seen", "")), reverse=True)

    def order_list(self, *, open_only: bool = False, district: str | None = None) -> list[dict[str, Any]]:
        found = [v for v in self.orders.values() if (district is None or v["district_id"] == district)
                 and (not open_only or v.get("closed") is None)]
        return sorted(found, key=lambda v: str((v.get("filed") or {}).get("at", "")), reverse=True)

    async def case_counts(self, start_ms: int, end_ms: int) -> list[CaseCounts]:
        """The reports' work-order figures (a :class:`~lightctl.services.reports.sources.CaseSource`)
        over the districts' orders as their events last showed them: the counts a district's own
        records give (:class:`lightctl.services.reports.fault_records.WorkOrderCases`), compared at
        the second (a view's times), for the orders the city has heard of."""
        tally: dict[tuple[str, str | None], list[int]] = {}
        for view in self.orders.values():
            due = _ms((view.get("due") or {}).get("at"))
            place = view.get("location") or {}
            district = (place.get("district") or {}).get("id")
            if due is None or district is None or not start_ms <= due < end_ms:
                continue
            site = (place.get("site") or {}).get("id")
            counts = tally.setdefault((district, site), [0, 0, 0, 0, 0])
            counts[0] += 1
            if view.get("deferred") is not None:
                counts[1] += 1
                continue
            handled, closed = _ms(view.get("handled_at")), _ms((view.get("closed") or {}).get("at"))
            counts[2] += handled is not None and handled <= due
            counts[3] += closed is not None and closed <= due
            counts[4] += closed is not None
        return [CaseCounts(d, s, *c) for (d, s), c in sorted(tally.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))]
