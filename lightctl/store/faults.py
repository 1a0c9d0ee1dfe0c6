"""Faults, their transitions, and the channels' burning hours.

The fault service keeps the open faults in memory and writes what changed in batches
(``upsert`` and ``add_events`` inside one writer job, with the notifications they cause: see
``lightctl.store.outbox``); an open fault is updated in place, by its id. At start it loads the
open ones back (``open_faults``), so that a restart judges them again and never opens a second
fault for one condition: the unique index on open keys would refuse it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lightctl.model.faults import Severity
from lightctl.model.maintenance import FaultRecord
from lightctl.model.values import FaultKind
from lightctl.store.readers import ReaderPool, Row
from lightctl.store.sql import Connection

COLUMNS = (
    "id", "fault_key", "kind", "severity", "district_id", "site_id", "controller_id", "channel_id", "lat", "lon",
    "lighting", "luminaires", "opened_at", "last_seen", "occurrences", "evidence", "cleared_at", "cleared_how",
    "acked_at", "acked_by", "shelved_until", "shelved_by", "shelve_reason", "parent_id", "chattering", "updated_at",
)
_UPSERT = (
    f"INSERT INTO faults ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c not in ("id", "fault_key", "opened_at"))
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM faults"


@dataclass(frozen=True, slots=True)
class FaultEvent:
    fault_id: int
    at: int
    event: str
    person: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelHours:
    controller_id: str
    channel_id: str
    burning_s: float
    since: int


def row_of(rec: FaultRecord, now: int) -> tuple[Any, ...]:
    return (
        rec.id, rec.key, rec.kind.value, rec.severity.value, rec.district_id, rec.site_id, rec.controller_id,
        rec.channel_id, rec.lat, rec.lon, rec.lighting, rec.luminaires, rec.opened_at, rec.last_seen,
        rec.occurrences, rec.evidence, rec.cleared_at, rec.cleared_how, rec.acked_at, rec.acked_by,
        rec.shelved_until, rec.shelved_by, rec.shelve_reason, rec.parent_id, rec.chattering, now,
    )


def record_of(row: Row) -> FaultRecord:
    return FaultRecord(
        id=row["id"], key=row["fault_key"], kind=FaultKind(row["kind"]), severity=Severity(row["severity"]),
        district_id=row["district_id"], site_id=row["site_id"], controller_id=row["controller_id"],
        channel_id=row["channel_id"], lat=row["lat"], lon=row["lon"], lighting=row["lighting"],
        luminaires=row["luminaires"], opened_at=row["opened_at"], last_seen=row["last_seen"],
        evidence=row["evidence"], occurrences=row["occurrences"], cleared_at=row["cleared_at"],
        cleared_how=row["cleared_how"], acked_at=row["acked_at"], acked_by=row["acked_by"],
        shelved_until=row["shelved_until"], shelved_by=row["shelved_by"], shelve_reason=row["shelve_reason"],
        parent_id=row["parent_id"], chattering=bool(row["chattering"]), saved_seen=row["last_seen"],
    )


def upsert(conn: Connection, records: Sequence[FaultRecord], now: int) -> None:
    conn.executemany(_UPSERT, [row_of(rec, now) for rec in records])


def add_events(conn: Connection, events: Iterable[FaultEvent]) -> None:
    conn.executemany(
        "INSERT INTO fault_events (fault_id, at, event, person, note) VALUES (?,?,?,?,?)",
        [(e.fault_id, e.at, e.event, e.person, e.note) for e in events],
    )


def save_hours(conn: Connection, rows: Iterable[ChannelHours], now: int) -> None:
    conn.executemany(
        "INSERT INTO channel_hours (controller_id, channel_id, burning_s, since, updated_at) VALUES (?,?,?,?,?)"
        " ON CONFLICT (controller_id, channel_id) DO UPDATE SET burning_s = excluded.burning_s,"
        " since = excluded.since, updated_at = excluded.updated_at",
        [(r.controller_id, r.channel_id, r.burning_s, r.since, now) for r in rows],
    )


def add_relamping(
    conn: Connection, controller_id: str, channel_id: str, at: int, person: str, hours_before: float, note: str | None
) -> None:
    conn.execute(
        "INSERT INTO relampings (controller_id, channel_id, at, person, hours_before, note) VALUES (?,?,?,?,?,?)",
        [controller_id, channel_id, at, person, hours_before, note],
    )


class Faults:
    def __init__(self, readers: ReaderPool) -> None:
        self._readers = readers

    async def open_faults(self) -> list[FaultRecord]:
        rows = await self._readers.query(f"{SELECT} WHERE cleared_at IS NULL ORDER BY id")
        return [record_of(r) for r in rows]

    async def shelves(self, now: int) -> dict[str, tuple[int, str, str]]:
        """Shelves still in force, by key (a cleared fault's shelf holds for its key's next)."""
        rows = await self._readers.query(
            "SELECT fault_key, shelved_until, shelved_by, shelve_reason FROM faults WHERE shelved_until > ? ORDER BY id",
            [now],
        )
        return {r["fault_key"]: (r["shelved_until"], r["shelved_by"] or "", r["shelve_reason"] or "") for r in rows}

    async def next_id(self) -> int:
        rows = await self._readers.query("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM faults")
        return int(rows[0]["next"])

    async def get(self, fault_id: int) -> FaultRecord | None:
        rows = await self._readers.query(f"{SELECT} WHERE id = ?", [fault_id])
        return record_of(rows[0]) if rows else None

    async def by_ids(self, ids: Iterable[int]) -> dict[int, FaultRecord]:
        wanted = list(ids)
        if not wanted:
            return {}
        rows = await self._readers.query(f"{SELECT} WHERE id IN ({', '.join('?' for _ in wanted)})", wanted)
        return {r["id"]: record_of(r) for r in rows}

    async def query(
        self,
        *,
        active: bool = False,
        site: str | None = None,
        kind: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 1000,
    ) -> list[FaultRecord]:
        """Faults newest first; ``since``/``until`` bound when they opened."""
        where, params = _filters(active=active, site=site, kind=kind, since=since, until=until)
        rows = await self._readers.query(f"{SELECT}{where} ORDER BY opened_at DESC, id DESC LIMIT ?", [*params, limit])
        return [record_of(r) for r in rows]

    async def events(self, fault_id: int) -> list[FaultEvent]:
        rows = await self._readers.query(
            "SELECT fault_id, at, event, person, note FROM fault_events WHERE fault_id = ? ORDER BY at, id", [fault_id]
        )
        return [FaultEvent(r["fault_id"], r["at"], r["event"], r["person"], r["note"]) for r in rows]

    async def hours(self) -> list[ChannelHours]:
        rows = await self._readers.query("SELECT controller_id, channel_id, burning_s, since FROM channel_hours")
        return [ChannelHours(r["controller_id"], r["channel_id"], r["burning_s"], r["since"]) for r in rows]


def _filters(
    *, active: bool, site: str | None, kind: str | None, since: int | None, until: int | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if active:
        clauses.append("cleared_at IS NULL")
    for column, value in (("site_id", site), ("kind", kind)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("opened_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("opened_at < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
