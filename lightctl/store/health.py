"""The store's health as the writer finds it: healthy until a batch fails to land, unhealthy (with
the last error and when) until a batch commits again. The first failure and the recovery are
logged once each, not every failed batch; so are observations dropped or rejected."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from lightctl.model.times import iso_local, now_ms

log = logging.getLogger("lightctl.store")


@dataclass(frozen=True, slots=True)
class StoreHealth:
    healthy: bool
    last_error: str | None
    """The last failure that made or kept the store unhealthy (kept after recovery, for the record)."""
    last_error_at: int | None
    unhealthy_since: int | None
    """UTC ms of the first failure of the current episode; None while healthy."""
    failed_batches: int
    """Batches that failed to land since the store opened."""
    queued_writes: int
    waiting_for_room: int
    """Async writers waiting for room in the full queue."""
    observations_pending: int
    observations_dropped: int
    """Observation records never written, since the store opened: the buffer was full (the writer
    could not commit for long) or the store closed while they could not be written."""
    observations_rejected: int
    """Observation records the database refused as bad rows (a bug, logged), since the store opened."""

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "last_error": self.last_error,
            "last_error_at": iso_local(self.last_error_at, zone),
            "unhealthy_since": iso_local(self.unhealthy_since, zone),
            "failed_batches": self.failed_batches,
            "queued_writes": self.queued_writes,
            "waiting_for_room": self.waiting_for_room,
            "observations_pending": self.observations_pending,
            "observations_dropped": self.observations_dropped,
            "observations_rejected": self.observations_rejected,
        }


class HealthTracker:
    """Updated by the writer thread, read by the event loop's thread."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.last_error_at: int | None = None
        self.unhealthy_since: int | None = None
        self.failed_batches = 0
        self._failed_in_episode = 0
        self.dropped = 0
        self._dropped_logged = 0
        self.rejected = 0

    @property
    def healthy(self) -> bool:
        return self.unhealthy_since is None

    def failed(self, error: str) -> None:
        at = now_ms()
        with self._lock:
            first = self.unhealthy_since is None
            self.last_error, self.last_error_at = error, at
            self.failed_batches += 1
            self._failed_in_episode += 1
            if first:
                self.unhealthy_since = at
        if first:
            log.error("store %s: writes are failing, records are not landing: %s", self.label, error)

    def succeeded(self) -> None:
        if self.unhealthy_since is None:
            return
        with self._lock:
            failed, self._failed_in_episode = self._failed_in_episode, 0
            self.unhealthy_since = None
            dropped = self.dropped - self._dropped_logged
            self._dropped_logged = self.dropped
        log.warning(
            "store %s: writes land again after %d failed batch(es)%s",
            self.label,
            failed,
            f"; {dropped} observation record(s) were dropped meanwhile" if dropped else "",
        )

    def drop(self, count: int, why: str) -> None:
        with self._lock:
            first = self.dropped == self._dropped_logged
            self.dropped += count
        if first:
            log.error("store %s: observation records dropped (%s); counting them in the store's health", self.label, why)

    def reject(self, count: int) -> None:
        with self._lock:
            self.rejected += count

    def snapshot(self, queued: int, waiting: int, pending: int) -> StoreHealth:
        with self._lock:
            return StoreHealth(
                healthy=self.unhealthy_since is None,
                last_error=self.last_error,
                last_error_at=self.last_error_at,
                unhealthy_since=self.unhealthy_since,
                failed_batches=self.failed_batches,
                queued_writes=queued,
                waiting_for_room=waiting,
                observations_pending=pending,
                observations_dropped=self.dropped,
                observations_rejected=self.rejected,
            )
