"""A district's measurements for the city's reports: its energy roll-ups and lighting-on
inspections, sent through its outbox (kept in its store, sent in order and once, whatever the
broker does), and taken by the city into its own tables in the transaction that records them.

**District** (:class:`RollupReporter`): the roll-ups note each hour they write in
``energy_hours_changed`` (a district daemon's store only: ``RollupModel.note_changes``), raising
the note's version each time. Every ``rollup_interval_s`` the reporter reads the notes and their
hours' rows on a reader, keeps those that differ from what it last sent of them (kept in memory
for the open and the previous hour; after a restart, a noted hour goes whole), encodes them in
pages of :data:`PAGE_ROWS` rows, and then, in one short transaction of the writer, puts the pages
into the outbox and removes the notes it read *at the version it read them*: an hour written
again meanwhile keeps its note and goes again next round. So an hour is sent again whenever
anything in it changed, however old (a meter step spread back over a gap of hours changes old
hours), and no note goes without its rows reaching the outbox: a district stopped for a day, or
cut from the broker, sends every hour it wrote since. A round takes at most :data:`ROUND_ROWS`
rows; the next one follows at once. The first round of a district that never sent any also sends
the hours of the last :data:`FIRST_LOOK_BACK_MS` (older ones stay the district's own).
Inspections go whole, each after the last one sent (mark ``rollups/inspection``, moved in the
writer's transaction), in parts of at most :data:`PAGE_ROWS` rows and sites.

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
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from lightctl.model.energy import LocalCalendar
from lightctl.model.times import now_ms
from lightctl.store import Store, StoreError
from lightctl.store.district_copies import (
    HOUR_COLUMNS,
    changed_hours,
    copy_hours,
    copy_inspection,
    forget_changed,
    hour_rows,
    inspections_after,
    note_hours_since,
)
from lightctl.store.federation import OutboxEvent, outbox_insert
from lightctl.store.sql import Connection

log = logging.getLogger("lightctl.federation")

ROLLUP = "rollup"
INSPECTION = "inspection"
SUMMARISED = (ROLLUP, INSPECTION)
"""Kinds the city records as a summary of what it took (their rows go into its report tables)."""
HOUR_MS = 3_600_000
PAGE_ROWS = 2000
"""Rows in one event (about 250 kB of JSON: well under a broker's usual 1 MB packet limit)."""
ROUND_ROWS = 20_000
HOURS_PER_ROUND = 200
INSPECTIONS_PER_ROUND = 20
STARTED_MARK = "rollups/started"
INSPECTION_MARK = "rollups/inspection"
FIRST_LOOK_BACK_MS = 48 * HOUR_MS

HourKey = tuple[int, str, str]


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Round:
    """What one round reads and keeps."""

    marks: dict[str, int]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    hours: list[tuple[int, int]] = field(default_factory=list)
    """The notes taken: (hour, version)."""
    events: list[tuple[int, str, str | None, str]] = field(default_factory=list)
    more: bool = False


class RollupReporter:
    """The district side: what changed, into the outbox."""

    def __init__(self, store: Store, interval_s: float, sent: Callable[[], None]) -> None:
        self.store = store
        self.interval_s = interval_s
        self.sent = sent
        """Called after events went into the outbox (the node sends them)."""
        self._last: dict[HourKey, tuple[Any, ...]] = {}
        """What was last sent of each row of the open and the previous hour."""
        self.rows_sent = 0

    async def run(self) -> None:
        while True:
            try:
                while (await self.report()).more:
                    pass
            except StoreError as exc:  # tried again next round: nothing was forgotten or moved
                log.error("federation: the roll-ups for the city could not be read or kept (%s); trying again", exc)
            await asyncio.sleep(self.interval_s)

    async def report(self) -> Round:
        """One round: read and encoded on a reader, kept in one short transaction of the writer."""
        records = self.store.federation
        now = now_ms()
        if await records.mark(STARTED_MARK) == 0:
            first = now // HOUR_MS * HOUR_MS - FIRST_LOOK_BACK_MS
            await self.store.write(lambda conn: note_hours_since(conn, first))
        last_inspection = await records.mark(INSPECTION_MARK)
        done = await self.store.read_with(lambda conn: self._read(conn, now, last_inspection))

        def keep(conn: Connection) -> None:
            outbox_insert(conn, done.events, done.marks)
            forget_changed(conn, done.hours)

        await self.store.write(keep)
        for row in done.rows:
            self._last[(row[0], row[1], row[2])] = row[3:]
        kept_from = now // HOUR_MS * HOUR_MS - HOUR_MS
        for key in [k for k in self._last if k[0] < kept_from]:
            del self._last[key]
        self.rows_sent += len(done.rows)
        if done.events:
            self.sent()
        return done

    def _read(self, conn: Connection, now: int, last_inspection: int) -> Round:
        """The hours noted (with the version of their note) and their rows that differ from what
        was last sent, the inspections after the last one sent, as the events that carry them."""
        done = Round(marks={STARTED_MARK: now})
        notes = changed_hours(conn, HOURS_PER_ROUND)
        for hour, version in notes:
            done.rows += [row for row in hour_rows(conn, hour) if self._last.get((row[0], row[1], row[2])) != row[3:]]
            done.hours.append((hour, version))
            if len(done.rows) >= ROUND_ROWS:
                break
        inspections = inspections_after(conn, last_inspection, INSPECTIONS_PER_ROUND)
        done.events = [
            (now, ROLLUP, None, _text({"grain": "hour", "columns": HOUR_COLUMNS, "rows": done.rows[i:i + PAGE_ROWS]}))
            for i in range(0, len(done.rows), PAGE_ROWS)
        ]
        for inspection in inspections:
            done.events += [(now, INSPECTION, None, _text(part)) for part in inspection_parts(inspection)]
        if inspections:
            done.marks[INSPECTION_MARK] = int(inspections[-1]["id"])
        done.more = len(done.hours) < len(notes) or len(notes) == HOURS_PER_ROUND or len(inspections) == INSPECTIONS_PER_ROUND
        return done


def inspection_parts(inspection: dict[str, Any]) -> list[dict[str, Any]]:
    """An inspection as events of at most :data:`PAGE_ROWS` rows and sites together (part 0
    carries its head; the city adds the others' rows to it)."""
    rows, sites = inspection["rows"], inspection["sites"]
    head = {k: v for k, v in inspection.items() if k not in ("rows", "sites")}
    parts: list[dict[str, Any]] = []
    for i in range(0, max(len(rows) + len(sites), 1), PAGE_ROWS):
        rows_part = rows[i:i + PAGE_ROWS]
        sites_part = sites[max(i - len(rows), 0):max(i + PAGE_ROWS - len(rows), 0)]
        parts.append({**head, "part": len(parts), "rows": rows_part, "sites": sites_part})
    return parts


class RollupTaker:
    """The city side: a district's roll-ups and inspections into the city's tables."""

    def __init__(self, zone: str) -> None:
        self.calendar = LocalCalendar(ZoneInfo(zone))

    def __call__(self, conn: Connection, district: str, event: OutboxEvent) -> str:
        if event.kind not in SUMMARISED:
            return event.body
        try:
            body = json.loads(event.body)
            if event.kind == ROLLUP:
                if body.get("grain") != "hour" or list(body.get("columns", ())) != list(HOUR_COLUMNS):
                    raise ValueError(f"roll-ups of grain {body.get('grain')!r} with columns {body.get('columns')!r}")
                taken = copy_hours(conn, self.calendar, body["rows"])
                return _text({"grain": "hour", "rows": taken})
            inspection_id = copy_inspection(conn, district, body)
            return _text({"id": body["id"], "part": body.get("part", 0), "at": body["at"], "instant": body["instant"],
                          "rows": len(body["rows"]), "sites": len(body["sites"]), "copy": inspection_id})
        except (ValueError, KeyError, TypeError) as exc:  # recorded as it came, and said: nothing is dropped silently
            log.error("city: district %s event %d (%s) could not be taken into the reports: %s", district, event.id, event.kind, exc)
            return event.body
