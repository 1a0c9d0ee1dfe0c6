"""Schedules: calendars, astronomical events, entries and priorities (ARCHITECTURE.md section 5).

``build(config, inventory)`` gives the core a pure ``ScheduleSource``; ``schedules.runner`` fires
"reconcile now" at its transitions. Imports are lazy: lightctl.config imports schedules.model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightctl.config import Config
    from lightctl.inventory import Inventory
    from schedules.engine import Schedule


def build(config: Config, inventory: Inventory) -> Schedule:
    from schedules.builder import build as _build

    return _build(config, inventory)


__all__ = ["build"]
