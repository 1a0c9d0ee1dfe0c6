"""The work-order loop as data: which step may follow which, and what each step stamps.

立案 file -> 派遣 dispatch (to a crew) -> 处置 handle -> 反馈 feedback (note, photo) -> 核查 verify
(or reject: back to the crew) -> 结案 close. A deferral (延期) gives an open order a new deadline
with its reason; the on-time rates count deferred cases apart (DOMAIN.md). Closing while one of
the order's faults is still active needs the verifier's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from lightctl.model.faults import Crew, FaultsConfig, Severity
from lightctl.model.maintenance import FaultRecord, WorkOrder, WorkOrderState, WorkOrderStep
from lightctl.model.times import to_ms
from lightctl.services.faults.deadlines import due
from schedules.calendars import OfficialCalendar

S = WorkOrderState
OPEN = frozenset(s for s in WorkOrderState if s is not S.CLOSED)


class WorkOrderRefused(ValueError):
    """A step that does not fit the order's state, or is missing what it needs."""


@dataclass(frozen=True, slots=True)
class StepRule:
    allowed: frozenset[WorkOrderState]
    to: WorkOrderState | None
    stamp: Callable[[WorkOrder, int], None] | None = None


def _stamp(field_name: str) -> Callable[[WorkOrder, int], None]:
    def stamp(order: WorkOrder, now: int) -> None:
        setattr(order, field_name, now)

    return stamp


STEP_RULES: dict[str, StepRule] = {
    "dispatch": StepRule(frozenset({S.FILED, S.DISPATCHED, S.HANDLING}), S.DISPATCHED, _stamp("dispatched_at")),
    "handle": StepRule(frozenset({S.DISPATCHED}), S.HANDLING, _stamp("handling_at")),
    "feedback": StepRule(frozenset({S.DISPATCHED, S.HANDLING}), S.HANDLED, _stamp("handled_at")),
    "verify": StepRule(frozenset({S.HANDLED}), S.VERIFIED, _stamp("verified_at")),
    "reject": StepRule(frozenset({S.HANDLED}), S.HANDLING, None),
    "close": StepRule(frozenset({S.VERIFIED}), S.CLOSED, _stamp("closed_at")),
    "defer": StepRule(OPEN, None, _stamp("deferred_at")),
}
"""Step -> the states it may be taken from, the state it leads to, the time it stamps."""


def advance(
    order: WorkOrder, step: str, person: str, now: int, *, note: str | None = None, crew: str | None = None,
    photo: str | None = None,
) -> WorkOrderStep:
    rule = STEP_RULES[step]
    if order.state not in rule.allowed:
        allowed = ", ".join(sorted(s.value for s in rule.allowed))
        raise WorkOrderRefused(f"work order #{order.id} is {order.state.value}: '{step}' needs it {allowed}")
    if rule.to is not None:
        order.state = rule.to
    if rule.stamp is not None:
        rule.stamp(order, now)
    if step == "handle" and order.handling_at is None:
        order.handling_at = now
    return WorkOrderStep(step, now, person, note, crew, photo)


def file_order(
    *,
    source: str,
    title: str,
    severity: Severity,
    filed: datetime,
    by: str,
    config: FaultsConfig,
    calendar: OfficialCalendar,
    faults: Sequence[FaultRecord] = (),
    description: str | None = None,
    reference: str | None = None,
    district: str | None = None,
    site: str | None = None,
    controller: str | None = None,
    channel: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    lighting: str | None = None,
    note: str | None = None,
) -> WorkOrder:
    """A new work order (立案) with its deadline by severity; the place is its first fault's
    unless given (a hotline report names its own)."""
    first = faults[0] if faults else None
    if first is not None:
        district, site = district or first.district_id, site or first.site_id
        controller = controller or first.controller_id
        if channel is None and all(f.channel_id == first.channel_id and f.controller_id == first.controller_id for f in faults):
            channel = first.channel_id
        lat, lon = lat if lat is not None else first.lat, lon if lon is not None else first.lon
        kinds = {f.lighting for f in faults}
        lighting = lighting or (kinds.pop() if len(kinds) == 1 else "mixed")
    deadline = due(filed, config.deadlines.of(severity), calendar)
    now = to_ms(filed)
    return WorkOrder(
        id=0,
        source=source,
        title=title,
        severity=severity,
        state=S.FILED,
        district_id=district,
        site_id=site,
        controller_id=controller,
        channel_id=channel,
        lat=lat,
        lon=lon,
        lighting=lighting,
        filed_at=now,
        filed_by=by,
        due_at=to_ms(deadline.at),
        due_basis=f"{severity.value}: {deadline.basis}",
        due_estimated=deadline.estimated,
        reference=reference,
        description=description,
        faults=[f.id for f in faults],
        steps=[WorkOrderStep("file", now, by, note)],
    )


def crew_for(order: WorkOrder, crew_id: str, crews: Sequence[Crew]) -> Crew:
    """The crew an order is dispatched to: it must exist and cover the order's district."""
    crew = next((c for c in crews if c.id == crew_id), None)
    if crew is None:
        known = ", ".join(c.id for c in crews) or "none configured (faults.crews)"
        raise WorkOrderRefused(f"unknown crew {crew_id!r} (known: {known})")
    if order.district_id is not None and order.district_id not in crew.districts:
        raise WorkOrderRefused(
            f"crew {crew_id!r} covers {', '.join(crew.districts)}, not district {order.district_id!r} of work order #{order.id}"
        )
    return crew


def title_for(faults: Sequence[FaultRecord], label: Callable[[FaultRecord], str]) -> str:
    if not faults:
        return "work order"
    first = faults[0]
    where = first.controller_id or first.site_id
    if first.channel_id:
        where += f"/{first.channel_id}"
    more = f" (+{len(faults) - 1} related)" if len(faults) > 1 else ""
    return f"{label(first)} at {where}{more}"
