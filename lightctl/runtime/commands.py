"""Operators' commands as data: the layers they hold (overrides, hand-backs, curtailments), the
report of a command, and the refusal of one that cannot be carried out as asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lightctl.model.desired import Layer
from lightctl.reconcile.outcomes import CommandOutcome, Status


class CommandRefused(ValueError):
    """An operator's command that cannot be carried out as asked (unknown scene, bad selector)."""


class NotFound(CommandRefused):
    """What the command names does not exist: no such scene, show, override or curtailment (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's layer: a scene held on a selector, or a curtailment capping its level."""

    id: int
    kind: str  # "override" or "curtail"
    scene: str
    target: str
    user: str
    until: datetime | None
    cap: float | None = None

    def layer(self) -> Layer:
        until = f" until {self.until.isoformat(timespec='minutes')}" if self.until else ""
        scene = None if self.cap is not None else self.scene
        return Layer(self.kind, scene, self.target, f"#{self.id} by {self.user}{until}", self.cap)


@dataclass(frozen=True, slots=True)
class CurtailReport:
    override_id: int
    shed_channels: int
    shed_luminaires: int
    shed_kw: float
    command: CommandReport

    def as_json(self) -> dict[str, Any]:
        return {
            "curtailment_id": self.override_id,
            "shed": {"channels": self.shed_channels, "luminaires": self.shed_luminaires, "kw": round(self.shed_kw, 3)},
            "command": self.command.as_json(),
        }


@dataclass(frozen=True, slots=True)
class CommandReport:
    command_id: int
    scene: str
    target: str
    outcome: CommandOutcome
    source: str = ""
    """Who asked: ``operator``, ``schedule``, ``startup``, ``expiry``, ``show``."""
    action: str = ""
    """``override``, ``curtail``, ``reconcile``, ``confirm``."""
    user: str = ""
    layer_id: int | None = None
    """The override or curtailment the command set, if it set one."""

    def as_json(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "user": self.user,
            "source": self.source,
            "action": self.action,
            "scene": self.scene,
            "target": self.target,
            "elapsed_s": round(self.outcome.elapsed_s, 4),
            "summary": {s.value: self.outcome.count(s) for s in (Status.CONFIRMED, Status.UNCONFIRMED, Status.FAILED)},
            "controllers": {cid: o.as_json() for cid, o in sorted(self.outcome.controllers.items())},
        }


def parse_until(text: str | None, now: datetime) -> datetime | None:
    """``HH:MM`` (today, or tomorrow if already past) or an ISO 8601 instant."""
    if not text:
        return None
    if len(text) <= 5 and ":" in text:
        hour, minute = (int(x) for x in text.split(":"))
        candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return candidate if candidate > now else candidate + timedelta(days=1)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)

