"""What the schedule will do: every transition in a span of operating days, as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from lightctl.inventory.index import Inventory
from schedules.engine import Schedule, Transition
from schedules.events import day_start


def preview(
    schedule: Schedule, inventory: Inventory, first: date, days: int, target: str | None = None
) -> list[Transition]:
    """Transitions from noon of ``first`` for ``days`` operating days; with ``target``, only those
    whose selector shares a channel with it (raises SelectorError for a bad selector)."""
    start = day_start(first, schedule.zone)
    end = day_start(first + timedelta(days=days), schedule.zone)
    rows = list(schedule.transitions(start, end))
    if target is None:
        return rows
    wanted = inventory.select(target)
    return [row for row in rows if inventory.select(row.target) & wanted]


@dataclass(frozen=True, slots=True)
class Night:
    """One operating day as the calendar sees it: a working day, a rest day, which holiday, and
    whether that is estimated (no published arrangement for its year)."""

    day: date
    workday: bool
    holiday: str | None
    makeup_workday: bool
    estimated: bool

    def describe(self) -> str:
        kind = self.holiday or ("make-up working day" if self.makeup_workday else "working day" if self.workday else "rest day")
        return f"{self.day} ({self.day:%a}) {kind}" + (", holidays estimated" if self.estimated else "")


def nights(schedule: Schedule, first: date, days: int) -> list[Night]:
    calendar = schedule.official
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        out.append(
            Night(day, calendar.is_workday(day), calendar.holiday(day), calendar.is_makeup_workday(day), calendar.estimated(day))
        )
    return out


def as_json(rows: Iterable[Transition]) -> list[dict[str, Any]]:
    return [
        {
            "at": row.at.isoformat(),
            "action": row.action,
            "scene": row.scene,
            "target": row.target,
            "priority": row.priority,
            "reason": row.reason,
            "entry": row.entry,
            "event": row.event,
            "estimated": row.estimated,
        }
        for row in rows
    ]


def dumps(rows: Iterable[Transition]) -> str:
    return json.dumps(as_json(rows), ensure_ascii=False, indent=2)


def table(rows: Sequence[Transition]) -> str:
    """One line per transition: local time with offset, start/end, scene, priority, target, why."""
    if not rows:
        return "no transitions"
    scene_w = max(len(r.scene) for r in rows)
    target_w = min(40, max(len(r.target) for r in rows))
    lines = []
    for row in rows:
        lines.append(
            f"{row.at.isoformat()}  {row.action:<5}  {row.scene:<{scene_w}}  p{row.priority:<4} "
            f"{row.target:<{target_w}}  {row.reason}" + ("  [holidays estimated]" if row.estimated else "")
        )
    return "\n".join(lines)
