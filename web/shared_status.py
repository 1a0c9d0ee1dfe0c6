"""The status document, built and encoded once and shared by every caller for a moment.

A console polls ``/api/v1/status`` (every controller's link, pending channels and readings: about
1 MB of JSON at 5,000 controllers, 25 ms to build and encode). Fifty consoles doing so during a
one switch over every controller took a third of the daemon's loop and doubled the switch
(``lightctl bench load``). Callers within ``MAX_AGE_S`` of each other now share one build; a
change of the overrides or the end of a command (:attr:`Daemon.revision`), or of the store's health,
makes the next caller build afresh, so whoever has just acted reads its effect and a store that
fails or recovers is seen at once. Link and reading changes between
builds reach consoles at once through the WebSocket; the document says when it was built
(``now``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from lightctl.runtime.daemon import Daemon

MAX_AGE_S = 1.0


@dataclass(frozen=True)
class StatusBody:
    body: bytes
    etag: str


class SharedStatus:
    def __init__(self, daemon: Daemon, *, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.daemon, self.max_age_s, self.clock = daemon, max_age_s, clock
        self._built: StatusBody | None = None
        self._built_at = 0.0
        self._revision: tuple[int, bool, int] | None = None
        self._builds = 0
        self.builds_saved = 0
        """Callers served a shared build (for tests and the load benchmark)."""

    def _revision_now(self) -> tuple[int, bool, int]:
        health = self.daemon.store.health()
        return self.daemon.revision, health.healthy, health.failed_batches

    def current(self) -> StatusBody:
        now = self.clock()
        revision = self._revision_now()
        if self._built is not None and self._revision == revision and now - self._built_at < self.max_age_s:
            self.builds_saved += 1
            return self._built
        body = json.dumps(self.daemon.status(), separators=(",", ":"), ensure_ascii=False).encode()
        self._builds += 1
        self._built, self._built_at, self._revision = StatusBody(body, f'"s{id(self):x}-{self._builds}"'), now, revision
        return self._built
