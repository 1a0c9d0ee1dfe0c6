"""Who may do what: the permissions every API route and CLI command is checked against.

One table, in one place. A route declares the permission it needs (``web.routing.Route``); a
route without one cannot be registered.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    READ = "read"
    """See state, records and reports."""
    OPERATE = "operate"
    """Scenes (the one switch), shows, overrides, hand-back, curtailment."""
    MAINTAIN = "maintain"
    """Faults and work orders."""
    ADMINISTER = "administer"
    """Users, tokens, configuration reload."""
