"""One daemon per database: an exclusive lock on a file beside it, held from open to close.

A second daemon started on the same records, or a restore while the daemon runs, is refused with
the holder's pid instead of two writers racing. The lock is an ``fcntl.flock``: the kernel drops it
when the process ends, however it ends, so a SIGKILL never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from lightctl.store.errors import StoreError


class DatabaseInUse(StoreError):
    """Another process (a running daemon) holds the database."""


def lock_path(database: str | Path) -> Path:
    return Path(f"{database}.lock")


class Ownership:
    """The database's owner lock. :meth:`take` raises :class:`DatabaseInUse` when it is held."""

    def __init__(self, database: str | Path) -> None:
        self.path = lock_path(database)
        self._fd: int | None = None

    def take(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DatabaseInUse(
                f"{self.path.with_suffix('')} is in use by another lightctl process (pid {holder}): "
                "stop it first (one daemon per database)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock

    def held(self) -> bool:
        return self._fd is not None
