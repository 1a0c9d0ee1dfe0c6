"""The ``faults:`` section: how faults are found, ranked and followed up by the maintenance crews.

Thresholds (voltage band per site, lamp power ratio, leakage), the alarm hygiene of ISA-18.2
(hysteresis, chattering, the clearing hold-off), severity by kind and the site's importance,
work-order deadlines by severity (hours, or working days of the official calendar), which
severities file work orders by themselves, the crews with their members and districts, the
webhooks that notify them, and the rated life of lamps by luminaire type. Frozen, validated once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from lightctl.model.installation import Frozen, Ident
from lightctl.model.values import FaultKind


class Severity(StrEnum):
    EMERGENCY = "emergency"
    SERIOUS = "serious"
    ORDINARY = "ordinary"

    @property
    def rank(self) -> int:
        """0 for the most urgent: sorting by rank puts emergencies first."""
        return SEVERITY_ORDER.index(self)

    def raised(self) -> Severity:
        return SEVERITY_ORDER[max(0, self.rank - 1)]


SEVERITY_ORDER = (Severity.EMERGENCY, Severity.SERIOUS, Severity.ORDINARY)

Importance = Literal["key", "normal"]
"""A key site (重点区域: the confluence, the show squares, the main bridges) raises every fault's
severity by one step."""


class Thresholds(Frozen):
    """Limits the rules compare measurements with. Voltages are phase-to-neutral."""

    over_voltage_v: float = Field(default=265.0, gt=0, description="a live phase above this: over-voltage")
    under_voltage_v: float = Field(default=180.0, gt=0, description="a live phase below this: under-voltage")
    dead_phase_v: float = Field(default=50.0, ge=0, description="a phase below this is dead (phase loss, loss of supply)")
    over_current_a: float = Field(default=100.0, gt=0, description="a phase current above this: over-current")
    leakage_ma: float = Field(default=30.0, gt=0, description="residual current above this: leakage (where measured)")
    lamp_power_ratio: float = Field(
        default=0.8, gt=0, lt=1, description="a lit metered circuit drawing less than this share of count x rated watts at its level"
    )
    lamp_readings: int = Field(default=2, ge=1, le=20, description="readings running before a low-power lamp failure opens")
    off_power_w: float = Field(default=20.0, ge=0, description="drawn while commanded off, above which (and above off_power_ratio)")
    off_power_ratio: float = Field(default=0.05, ge=0, lt=1, description="share of the circuit's rated watts")
    off_readings: int = Field(default=2, ge=1, le=20, description="readings running before burning-while-off opens")
    voltage_deadband_v: float = Field(default=5.0, ge=0, description="a voltage fault clears only this far back inside the band")

    @model_validator(mode="after")
    def _band(self) -> Thresholds:
        if self.under_voltage_v >= self.over_voltage_v:
            raise ValueError(f"under_voltage_v {self.under_voltage_v:g} must be below over_voltage_v {self.over_voltage_v:g}")
        if self.dead_phase_v >= self.under_voltage_v:
            raise ValueError(f"dead_phase_v {self.dead_phase_v:g} must be below under_voltage_v {self.under_voltage_v:g}")
        return self


class SiteFaults(Frozen):
    """One site's own importance and limits (each limit falls back to ``thresholds``)."""

    site: Ident
    importance: Importance = "normal"
    over_voltage_v: float | None = Field(default=None, gt=0)
    under_voltage_v: float | None = Field(default=None, gt=0)
    over_current_a: float | None = Field(default=None, gt=0)


class Deadline(Frozen):
    """Hours on the clock, or working days of the official calendar (make-up days included)."""

    hours: float | None = Field(default=None, gt=0, le=24 * 90)
    working_days: int | None = Field(default=None, ge=1, le=60)

    @model_validator(mode="after")
    def _one(self) -> Deadline:
        if (self.hours is None) == (self.working_days is None):
            raise ValueError("give either hours or working_days")
        return self

    def describe(self) -> str:
        if self.hours is not None:
            return f"{self.hours:g} h"
        return f"{self.working_days} working day{'s' if self.working_days != 1 else ''}"


class Deadlines(Frozen):
    """The Hebei rule as the default: emergencies handled within 1 h, serious faults within 3
    working days, ordinary ones within 24 h."""

    emergency: Deadline = Deadline(hours=1)
    serious: Deadline = Deadline(working_days=3)
    ordinary: Deadline = Deadline(hours=24)

    def of(self, severity: Severity) -> Deadline:
        return {Severity.EMERGENCY: self.emergency, Severity.SERIOUS: self.serious, Severity.ORDINARY: self.ordinary}[severity]


class Crew(Frozen):
    """A maintenance crew (维护班组): who is in it and which districts it covers."""

    id: Ident
    name: str
    members: list[str] = Field(default=[], description="user names of its members")
    districts: list[Ident] = Field(min_length=1, description="districts it covers")
    phone: str | None = None


WebhookEvent = Literal["fault", "workorder"]


class Webhook(Frozen):
    """A JSON POST for each fault or work-order event that concerns its crews and severities,
    signed with HMAC-SHA256 over the body (header ``X-Lightctl-Signature: sha256=<hex>``)."""

    id: Ident
    url: str = Field(pattern=r"^https?://\S+$")
    secret: str | None = Field(default=None, min_length=16)
    secret_env: str | None = Field(default=None, description="environment variable holding the secret")
    crews: list[Ident] = Field(default=[], description="crews it speaks for (none: every crew)")
    severities: list[Severity] = Field(default=[], description="severities it carries (none: all)")
    events: list[WebhookEvent] = ["fault", "workorder"]

    @model_validator(mode="after")
    def _secret(self) -> Webhook:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give either secret or secret_env: every delivery is signed")
        return self


class Delivery(Frozen):
    """How the outbox retries a webhook: doubling from ``first_retry_s`` up to ``max_retry_s``,
    until ``give_up_after_h`` after the event."""

    timeout_s: float = Field(default=10.0, gt=0, le=120)
    first_retry_s: float = Field(default=5.0, gt=0)
    max_retry_s: float = Field(default=600.0, gt=0)
    give_up_after_h: float = Field(default=48.0, gt=0)


class LampLife(Frozen):
    """Rated life of one luminaire type (``kind: any`` for every kind)."""

    kind: Literal["street", "landscape", "decoration", "any"] = "any"
    led: bool
    hours: float = Field(gt=0, le=500_000)


DEFAULT_LAMP_LIFE = [LampLife(led=True, hours=50_000), LampLife(led=False, hours=12_000)]


class Maintenance(Frozen):
    lamp_life: list[LampLife] = DEFAULT_LAMP_LIFE
    replacement_due_ratio: float = Field(
        default=0.9, gt=0, le=1, description="listed as due for replacement at this share of the rated life"
    )

    def life_of(self, kind: str, led: bool) -> float | None:
        """The most specific rated life for a luminaire kind (its own kind first, then ``any``)."""
        for wanted in (kind, "any"):
            for life in self.lamp_life:
                if life.kind == wanted and life.led == led:
                    return life.hours
        return None


class FaultsConfig(Frozen):
    comm_lost_missed: int = Field(
        default=3, ge=1, le=100, description="polls (or push intervals) missed before communication is lost"
    )
    convergence_deadline_s: float = Field(
        default=120.0, gt=0, description="a command still unconfirmed this long after it was sent: a fault"
    )
    clear_holdoff_s: float = Field(default=30.0, ge=0, description="a condition gone this long clears its fault")
    chatter_per_hour: int = Field(default=5, ge=1, le=1000, description="opening more often than this in an hour: chattering")
    chatter_stable_s: float = Field(default=900.0, ge=0, description="a chattering fault clears after this long stable")
    thresholds: Thresholds = Thresholds()
    sites: list[SiteFaults] = []
    severity: dict[FaultKind, Severity] = Field(default={}, description="a kind's severity, over the built-in table")
    deadlines: Deadlines = Deadlines()
    auto_file: list[Severity] = Field(default=[Severity.EMERGENCY], description="severities that file a work order by themselves")
    auto_dispatch: bool = Field(default=True, description="a work order filed by itself goes to the crew covering its district")
    crews: list[Crew] = []
    webhooks: list[Webhook] = []
    delivery: Delivery = Delivery()
    maintenance: Maintenance = Maintenance()

    def site(self, site_id: str) -> SiteFaults | None:
        for site in self.sites:
            if site.site == site_id:
                return site
        return None
