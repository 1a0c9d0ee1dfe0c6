"""How the daemon's parts that follow the field plug into it: faults, reports, notifications,
federation. Each is a :class:`DaemonService`, attached in ``lightctl.runtime.wiring``; the daemon
starts them after its records are open, hands them every engine event and every command's
outcome, and stops them, newest first, before the records close.
"""

from __future__ import annotations

from typing import Protocol

from lightctl.reconcile.outcomes import EngineEvent
from lightctl.runtime.commands import CommandReport


class DaemonService(Protocol):
    name: str

    async def start(self) -> None:
        """Called once the store is open and the operator layers are loaded, before the engine
        starts (so that the first readings are seen)."""
        ...

    async def stop(self) -> None: ...

    def observe(self, event: EngineEvent) -> None:
        """An engine event (a reading, a link change, a background convergence). Called on the
        event loop from the engine's listener: it must not block; a service that has slow work
        to do queues it. An exception is logged and never reaches the engine."""
        ...

    def command_done(self, report: CommandReport) -> None:
        """A command's outcome, every controller's result in it (same rules as ``observe``)."""
        ...
