"""Reconnect policy: capped exponential backoff with jitter, and availability with log-once."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lightctl.model.values import LinkState

log = logging.getLogger("lightctl.link")


@dataclass(frozen=True, slots=True)
class Pace:
    """The clock the engine's waits run on: backoff, retries, polls. Real time by default; tests
    and benchmarks speed it up (``speed=3600``: an hour a second) to show what a long absence does
    to retries, without waiting for it. Only these waits are compressed: a request's timeout and
    a command's deadline stay real, as the devices' answers do."""

    speed: float = 1.0
    origin: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        """Monotonic seconds on this clock."""
        return self.origin + (time.monotonic() - self.origin) * self.speed

    def real_s(self, seconds: float) -> float:
        """How long ``seconds`` of this clock take in real time."""
        return seconds / self.speed


REAL_TIME = Pace()


@dataclass(slots=True)
class Backoff:
    initial_s: float = 0.5
    maximum_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.25
    """Each delay is drawn from [d * (1 - jitter), d * (1 + jitter)] so that a district's
    controllers coming back together do not all retry in the same instant."""
    attempts: int = 0
    """Failures counted until the delay reaches its cap; it stays there however many follow (a
    device away for a night fails thousands of times, and ``2.0 ** 1024`` overflows a float)."""

    def next_delay(self) -> float:
        base = min(self.maximum_s, self.initial_s * self.factor**self.attempts)
        if base < self.maximum_s:
            self.attempts += 1
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        self.attempts = 0


@dataclass(slots=True)
class Link:
    """Availability of one controller, as seen from the last exchange with it. Logs the first
    failure and the recovery, never every retry."""

    controller_id: str
    backoff: Backoff = field(default_factory=Backoff)
    state: LinkState = LinkState.UNKNOWN
    since: float = field(default_factory=time.time)
    last_error: str | None = None
    retry_at: float = 0.0
    """Time (on ``clock``) before which background retries wait."""
    clock: Callable[[], float] = time.monotonic

    def succeeded(self) -> bool:
        """Record a good exchange. Returns True when this is a change of state."""
        self.backoff.reset()
        self.retry_at = 0.0
        if self.state is LinkState.ONLINE:
            return False
        if self.state is LinkState.OFFLINE:
            log.info("%s: back online after %.0f s", self.controller_id, time.time() - self.since, extra={"controller": self.controller_id})
        self.state, self.since, self.last_error = LinkState.ONLINE, time.time(), None
        return True

    def failed(self, error: str) -> bool:
        """Record a failed exchange and schedule the next background retry."""
        self.last_error = error
        self.retry_at = self.clock() + self.backoff.next_delay()
        if self.state is LinkState.OFFLINE:
            return False
        log.warning("%s: offline: %s", self.controller_id, error, extra={"controller": self.controller_id})
        self.state, self.since = LinkState.OFFLINE, time.time()
        return True
