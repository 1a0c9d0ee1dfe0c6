"""A district's measurements for the city's reports: its energy roll-ups and lighting-on
inspections, sent through its outbox (kept in its store, sent in order and once, whatever the
broker does), and taken by the city into its own tables in the transaction that records them.

**District** (:class:`RollupReporter`): every ``rollup_interval_s`` it sends the hour rows of
energy that changed since it last sent them (the open hour and the one before: readings may
arrive late), and every inspection it took since the last one sent, with its rows and sites. The
marks of how far it has sent (``rollups/hour``, ``rollups/inspection``) move forward in the
transaction that puts the events in the outbox, so a district that was stopped for a day sends
every hour since when it starts again. Hour rows go in pages of :data:`PAGE_ROWS`.

**City** (:class:`RollupTaker`): hour rows are upserted by (hour, controller, channel), so a row
sent again replaces itself; the days and months they fall in are summed again from the hours (in
the installation's zone, as a district sums its own); an inspection is taken once per district id.
The city keeps in its event log only how many rows an event carried, not the rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from lightctl.model.energy import LocalCalendar
from lightctl.model.times import now_ms
from lightctl.store import Store, StoreError
from lightctl.store.district_copies import (
    HOUR_COLUMNS,
    copy_hours,
    copy_inspection,
    hours_since,
    inspections_after,
)
from lightctl.store.federation import OutboxEvent
from lightctl.store.sql import Connection

log = logging.getLogger("lightctl.federation")

ROLLUP = "rollup"
INSPECTION = "inspection"
HOUR_MS = 3_600_000
PAGE_ROWS = 2000
INSPECTIONS_PER_ROUND = 50
HOUR_MARK = "rollups/hour"
INSPECTION_MARK = "rollups/inspection"
FIRST_LOOK_BACK_MS = 48 * HOUR_MS
"""A district that never sent its roll-ups starts with the last two days' hours."""


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class RollupReporter:
    """The district side: what changed, into the outbox."""

    def __init__(self, store: Store, interval_s: float, sent: Callable[[], None]) -> None:
        self.store = store
        self.interval_s = interval_s
        self.sent = sent
        """Called after events went into the outbox (the node sends them)."""
        self._last: dict[tuple[int, str, str], tuple[Any, ...]] = {}
        """What was last sent of each hour row still in the window."""
        self.rows_sent = 0

    async def run(self) -> None:
        while True:
            try:
                await self.report()
            except StoreError as exc:  # tried again next round: the marks did not move
                log.error("federation: the roll-ups for the city could not be read or kept (%s); trying again", exc)
            await asyncio.sleep(self.interval_s)

    async def report(self, now: int | None = None) -> int:
        """One round; the number of events kept for the city."""
        records = self.store.federation
        this_hour = (now_ms() if now is None else now) // HOUR_MS * HOUR_MS
        marked = await records.mark(HOUR_MARK)
        first = min(marked or this_hour - FIRST_LOOK_BACK_MS, this_hour - HOUR_MS)
        rows = await self.store.read_with(lambda conn: hours_since(conn, first))
        changed = [row for row in rows if self._last.get((row[0], row[1], row[2])) != row[3:]]
        last_inspection = await records.mark(INSPECTION_MARK)
        inspections = await self.store.read_with(lambda conn: inspections_after(conn, last_inspection, INSPECTIONS_PER_ROUND))
        at = now_ms()
        events: list[tuple[int, str, str | None, str]] = [
            (at, ROLLUP, None, _text({"grain": "hour", "columns": HOUR_COLUMNS, "rows": changed[i:i + PAGE_ROWS]}))
            for i in range(0, len(changed), PAGE_ROWS)
        ]
        events += [(at, INSPECTION, None, _text(inspection)) for inspection in inspections]
        marks = {HOUR_MARK: this_hour - HOUR_MS}
        if inspections:
            marks[INSPECTION_MARK] = int(inspections[-1]["id"])
        await records.outbox_add(events, marks)
        for row in changed:
            self._last[(row[0], row[1], row[2])] = row[3:]
        for key in [k for k in self._last if k[0] < this_hour - HOUR_MS]:
            del self._last[key]
        self.rows_sent += len(changed)
        if events:
            self.sent()
        return len(events)


class RollupTaker:
    """The city side: a district's roll-ups and inspections into the city's tables."""

    def __init__(self, zone: str) -> None:
        self.calendar = LocalCalendar(ZoneInfo(zone))

    def __call__(self, conn: Connection, district: str, event: OutboxEvent) -> str:
        if event.kind not in (ROLLUP, INSPECTION):
            return event.body
        try:
            body = json.loads(event.body)
            if event.kind == ROLLUP:
                if body.get("grain") != "hour" or list(body.get("columns", ())) != list(HOUR_COLUMNS):
                    raise ValueError(f"roll-ups of grain {body.get('grain')!r} with columns {body.get('columns')!r}")
                taken = copy_hours(conn, self.calendar, body["rows"])
                return _text({"grain": "hour", "rows": taken})
            inspection_id = copy_inspection(conn, district, body)
            return _text({"id": body["id"], "at": body["at"], "instant": body["instant"], "rows": len(body["rows"]),
                          "copy": inspection_id})
        except (ValueError, KeyError, TypeError) as exc:  # recorded as it came, and said: nothing is dropped silently
            log.error("city: district %s event %d (%s) could not be taken into the reports: %s", district, event.id, event.kind, exc)
            return event.body
