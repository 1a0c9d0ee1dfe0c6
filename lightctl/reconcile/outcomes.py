"""What the engine reports: each controller's outcome, a command's, and the events it emits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from lightctl.model.values import ChannelId, ChannelReading, ControllerReading, LinkState


class Status(StrEnum):
    CONFIRMED = "confirmed"
    UNCONFIRMED = "unconfirmed"
    FAILED = "failed"
    SENT = "sent"
    """Accepted by the device, not read back (a show's cue: the bus stays free for the next)."""


@dataclass(frozen=True, slots=True)
class ControllerOutcome:
    controller_id: str
    status: Status
    elapsed_s: float
    operations: int = 0
    error_kind: str | None = None
    error: str | None = None
    channels: int = 0

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "status": self.status.value,
            "elapsed_s": round(self.elapsed_s, 4),
            "operations": self.operations,
            "channels": self.channels,
        }
        if self.error is not None:
            out["error"] = self.error
            out["error_kind"] = self.error_kind
        return out


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    elapsed_s: float
    controllers: Mapping[str, ControllerOutcome]

    def count(self, status: Status | str) -> int:
        return sum(1 for o in self.controllers.values() if o.status == status)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    concurrency: int = 500
    deadline_s: float = 3.0
    confirm_retries: int = 2
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    polling: bool = True


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ReadingEvent:
    controller_id: str
    reading: ControllerReading
    changed: Mapping[ChannelId, ChannelReading]
    """Channels whose on/level differ from the previous reading (all of them on the first)."""


@dataclass(frozen=True, slots=True)
class LinkEvent:
    controller_id: str
    state: LinkState
    error: str | None


@dataclass(frozen=True, slots=True)
class ConvergedEvent:
    """A background convergence attempt (not part of an operator's command)."""

    outcome: ControllerOutcome


EngineEvent = ReadingEvent | LinkEvent | ConvergedEvent
Listener = Callable[[EngineEvent], None]


@dataclass(frozen=True, slots=True)
class Reconfigured:
    """What a new inventory changed in the engine: controllers by id."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    kept: int
    """Controllers whose runtime, driver and session were kept."""
