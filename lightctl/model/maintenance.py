"""Faults and work orders as records: what the fault service keeps, the store writes and the API
shows. Times are UTC epoch milliseconds (``lightctl.model.times``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lightctl.model.faults import Severity
from lightctl.model.values import FaultKind


class FaultStatus(StrEnum):
    """What an operator sees of a fault (ISA-18.2's states, plus the two ways an alarm is kept
    quiet on purpose)."""

    UNACKNOWLEDGED = "unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    """Hidden under its root cause (``parent_id``): kept, never annunciated."""
    CLEARED = "cleared"


def fault_key(kind: FaultKind | str, scope: str, channel: str | None) -> str:
    """A condition's identity: at most one open fault per key. ``scope`` is a controller id, or
    ``site:<id>`` for a site's fault."""
    return f"{kind}|{scope}|{channel or ''}"


@dataclass(eq=False)
class FaultRecord:
    id: int
    key: str
    kind: FaultKind
    severity: Severity
    district_id: str
    site_id: str
    controller_id: str | None
    channel_id: str | None
    lat: float
    lon: float
    lighting: str
    """street, landscape, decoration or mixed: what the reports split the condition rate by."""
    luminaires: int
    """Luminaires behind the faulty point (channel, controller or site)."""
    opened_at: int
    last_seen: int
    evidence: str
    occurrences: int = 1
    """Times the condition appeared while this fault was open (it came back within the hold-off)."""
    cleared_at: int | None = None
    cleared_how: str | None = None
    acked_at: int | None = None
    acked_by: str | None = None
    shelved_until: int | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    parent_id: int | None = None
    chattering: bool = False
    clear_since: int | None = field(default=None, compare=False)
    """Since when the condition has been gone (in memory only: a restart judges again)."""
    saved_seen: int = field(default=0, compare=False)
    """The ``last_seen`` last recorded (in memory only: it is recorded now and then, not per reading)."""

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def shelved(self, now_ms: int) -> bool:
        return self.shelved_until is not None and self.shelved_until > now_ms

    def status(self, now_ms: int) -> FaultStatus:
        if self.cleared_at is not None:
            return FaultStatus.CLEARED
        if self.parent_id is not None:
            return FaultStatus.SUPPRESSED
        if self.shelved(now_ms):
            return FaultStatus.SHELVED
        return FaultStatus.ACKNOWLEDGED if self.acked_at is not None else FaultStatus.UNACKNOWLEDGED

    def alarm(self, now_ms: int) -> bool:
        """Annunciated: active, not hidden under a cause, not shelved."""
        return self.cleared_at is None and self.parent_id is None and not self.shelved(now_ms)


class WorkOrderState(StrEnum):
    """The digital city management loop: 立案 -> 派遣 -> 处置 -> 反馈 -> 核查 -> 结案."""

    FILED = "filed"
    DISPATCHED = "dispatched"
    HANDLING = "handling"
    HANDLED = "handled"
    """Feedback given (反馈): the crew says it is done; verification is next."""
    VERIFIED = "verified"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class WorkOrderStep:
    step: str
    at: int
    person: str
    note: str | None = None
    crew_id: str | None = None
    photo: str | None = None
    """SHA-256 of a photo kept by the store (feedback)."""


@dataclass
class WorkOrder:
    id: int
    source: str
    """``fault`` (filed from faults, by hand or by the severity rule), ``hotline`` (12319), ``manual``."""
    title: str
    severity: Severity
    state: WorkOrderState
    district_id: str | None
    site_id: str | None
    controller_id: str | None
    channel_id: str | None
    lat: float | None
    lon: float | None
    lighting: str | None
    filed_at: int
    filed_by: str
    due_at: int
    due_basis: str
    """How the deadline was reached, e.g. ``3 working days (official calendar 2026)``."""
    due_estimated: bool
    """The deadline counted days of a year whose holidays are estimated, not published."""
    reference: str | None = None
    """The hotline's case number, or another system's."""
    description: str | None = None
    crew_id: str | None = None
    dispatched_at: int | None = None
    handling_at: int | None = None
    handled_at: int | None = None
    verified_at: int | None = None
    closed_at: int | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    closed_with_active_fault: bool = False
    deferred_at: int | None = None
    deferred_by: str | None = None
    defer_reason: str | None = None
    deferred_until: int | None = None
    overdue_notified_at: int | None = None
    faults: list[int] = field(default_factory=list)
    steps: list[WorkOrderStep] = field(default_factory=list)

    @property
    def deadline(self) -> int:
        """The deadline in force: a deferral's, else the one given at filing."""
        return self.deferred_until if self.deferred_until is not None else self.due_at

    def overdue(self, now_ms: int) -> bool:
        """Not closed, and past its deadline (a closed order was late if closed after it)."""
        end = self.closed_at if self.closed_at is not None else now_ms
        return end > self.deadline
