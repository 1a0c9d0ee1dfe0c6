"""The daemon with its services (lightctl.runtime.hooks) attached: what ``lightctl run`` starts.

One line per service, in the order they start; tests that want a bare daemon build ``Daemon``
directly.
"""

from __future__ import annotations

from lightctl.runtime.daemon import Daemon
from lightctl.runtime.faults import Faults


def attach_services(daemon: Daemon) -> Daemon:
    """Attach every service the configuration asks for; returns the daemon. (The daemon's own
    telemetry is always attached, by the daemon itself.)"""
    daemon.services.append(Faults(daemon))
    return daemon
