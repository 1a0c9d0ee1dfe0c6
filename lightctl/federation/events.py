"""Which of a district daemon's events go to the city, through its outbox (kept in its store,
sent in order and once, whatever the broker does).

The district takes them from the stream its daemon publishes to every console
(``Daemon.publish``): a kind of event that a room adds there reaches the city by one entry in
:data:`FORWARDED`. (Energy roll-ups and lighting-on inspections go whole, with their rows, by
:mod:`lightctl.federation.rollups`.) What a controller is *now* (its channels, its link) goes as Sparkplug state
(DBIRTH, DDATA), not here: this is the record of what happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightctl.runtime.events import Published


def _exceptions_only(message: dict[str, Any]) -> dict[str, Any]:
    """A command's outcome with only the controllers that were not confirmed: a district's
    records keep every controller's result, the city needs what went wrong (and its own
    commands' results come in the district's answer)."""
    controllers = message.get("controllers", {})
    return {**message, "controllers": {c: r for c, r in controllers.items() if r.get("status") != "confirmed"}}


@dataclass(frozen=True, slots=True)
class Forwarded:
    kind: str
    """The event's ``type`` in the daemon's stream, and its kind in the outbox and at the city."""
    controller_key: str | None = None
    """The field of the event naming the controller it is about, if any."""
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """What of the event the city gets (None: all of it, as the consoles get it)."""

    def controller(self, message: dict[str, Any]) -> str | None:
        if self.controller_key is None:
            return None
        value = message.get(self.controller_key)
        return value if isinstance(value, str) else None

    def body(self, event: Published) -> str:
        if self.shape is None:
            return event.text()
        return json.dumps(self.shape(event.message), ensure_ascii=False, separators=(",", ":"))


FORWARDED: dict[str, Forwarded] = {
    entry.kind: entry
    for entry in (
        Forwarded("command", shape=_exceptions_only),  # every command's outcome (schedule, operators, city)
        Forwarded("link", "controller"),  # a controller lost or found again
        Forwarded("fault"),  # faults opened, acknowledged, shelved, cleared (issue 14, branch faults)
        Forwarded("workorder"),  # work orders filed, dispatched, closed (issue 14, branch faults)
        Forwarded("show"),  # a light show's progress: started, its loops, ended
    )
}

ANSWER = "answer"
"""The district's answer to a request of the city (its outbox, like the events above)."""
