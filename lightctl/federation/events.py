"""Which of a district daemon's events go to the city, through its outbox (kept in its store,
sent in order and once, whatever the broker does).

The district takes them from the stream its daemon publishes to every console
(``Daemon.publish``): a kind of event that a room adds there reaches the city by one entry in
:data:`FORWARDED`. What a controller is *now* (its channels, its link) goes as Sparkplug state
(DBIRTH, DDATA), not here: this is the record of what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Forwarded:
    kind: str
    """The event's ``type`` in the daemon's stream, and its kind in the outbox and at the city."""
    controller_key: str | None = None
    """The field of the event naming the controller it is about, if any."""

    def controller(self, message: dict[str, Any]) -> str | None:
        if self.controller_key is None:
            return None
        value = message.get(self.controller_key)
        return value if isinstance(value, str) else None


FORWARDED: dict[str, Forwarded] = {
    entry.kind: entry
    for entry in (
        Forwarded("command"),  # every command's outcome with each controller's result (schedule, operators, city)
        Forwarded("link", "controller"),  # a controller lost or found again
        Forwarded("fault"),  # faults opened, acknowledged, shelved, cleared (issue 14, branch faults)
        Forwarded("workorder"),  # work orders filed, dispatched, closed (issue 14, branch faults)
        Forwarded("inspection"),  # lighting-on inspections (issue 15, branch reports)
    )
}

ANSWER = "answer"
"""The district's answer to a request of the city (its outbox, like the events above)."""
