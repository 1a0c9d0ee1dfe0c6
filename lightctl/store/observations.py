"""Observations: what the engine saw. State changes, meter readings and link events are recorded
from the engine's synchronous listener without waiting (see :mod:`lightctl.store.writer` for what
happens when the writer cannot keep up), and read back with async queries.

**Measurements in typed columns.** A reading's ``measurements`` are open-ended: Modbus cabinets
give ``voltage_l1_v``..``l3`` and ``current_l1_a``..``l3`` plus ``output_<channel>_pct`` per
dimmable circuit, OPC UA PLCs ``voltage_v`` and ``scene``, DALI gateways
``<channel>.lamp_failures`` and such. The figures every cabinet gives, which fault rules
(voltage bands, phase loss, leakage) and roll-ups aggregate, have their own columns in
``readings`` (:data:`READING_COLUMNS`): one row per reading, one ``executemany`` per batch, no
join to read them, and a column a device does not report costs a byte. A narrow table for all of
them would multiply the rows to insert and index by seven for a year of 15-minute readings (17.5
million readings, well over 100 million rows). Any other figure goes to ``reading_values
(reading_id, name, value)`` so that nothing a driver reports is lost; a figure that comes to
matter gets a column of its own in a later migration.

Reading ids are given by the writer (the highest id + 1, read inside the batch's transaction,
under the write lock), so that readings and their values are inserted with ``executemany``.

**Retention.** Readings older than the retention are pruned in steps of :data:`PRUNE_BATCH`
rows, in id order from the oldest, each step its own short transaction: a reading goes when the
readings before it have gone (a reading written late, after a failed batch, may outlive the
retention by as long as it was late).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from lightctl.model.times import iso_local, now_ms, to_ms
from lightctl.model.values import ChannelId, ChannelReading, ControllerReading
from lightctl.store.readers import ReaderPool
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer

READING_COLUMNS = (
    "voltage_v",
    "voltage_l1_v",
    "voltage_l2_v",
    "voltage_l3_v",
    "current_l1_a",
    "current_l2_a",
    "current_l3_a",
    "leakage_ma",
)
"""Measurements stored in a column of their own, named as the drivers name them."""
_COLUMN_SET = frozenset(READING_COLUMNS)

HOUR_MS = 3_600_000
HOURS_PER_QUERY = 744
"""A controller's readings are read at most a month of hours per query (one seek per hour)."""
PRUNE_BATCH = 2000
PRUNE_INTERVAL_S = 300.0
DAY_MS = 86_400_000

_INSERT_READING = (
    f"INSERT INTO readings (id, at, controller_id, power_w, energy_kwh, faults, {', '.join(READING_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in range(6 + len(READING_COLUMNS)))})"
)
_INSERT_BARE_READING = "INSERT INTO readings (id, at, controller_id, power_w, energy_kwh, faults) VALUES (?,?,?,?,?,?)"


def fault_text(faults: Iterable[str]) -> str | None:
    return ",".join(sorted(faults)) or None


def fault_set(text: str | None) -> frozenset[str]:
    return frozenset(text.split(",")) if text else frozenset()


class _StateChanges:
    name = "state changes"

    def insert(self, conn: Connection, rows: Sequence[tuple[str, int, Mapping[ChannelId, ChannelReading]]]) -> None:
        conn.executemany(
            "INSERT INTO state_changes (at, controller_id, channel_id, is_on, level, power_w, faults) VALUES (?,?,?,?,?,?,?)",
            [
                (at, controller_id, channel_id, r.on, r.level, r.power_w, fault_text(r.faults))
                for controller_id, at, changes in rows
                for channel_id, r in changes.items()
            ],
        )


class _Readings:
    name = "readings"

    def insert(self, conn: Connection, rows: Sequence[tuple[str, ControllerReading]]) -> None:
        first = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM readings").fetchone()[0]
        bare: list[tuple[Any, ...]] = []
        main: list[tuple[Any, ...]] = []
        extra: list[tuple[int, str, float]] = []
        for number, (controller_id, r) in enumerate(rows):
            reading_id = first + number
            measurements = r.measurements
            faults = fault_text(r.faults) if r.faults else None
            if not measurements:  # half the binding work: the named columns stay NULL
                bare.append((reading_id, to_ms(r.at), controller_id, r.power_w, r.energy_kwh, faults))
                continue
            main.append(
                (reading_id, to_ms(r.at), controller_id, r.power_w, r.energy_kwh, faults,
                 *[measurements.get(name) for name in READING_COLUMNS])
            )
            extra.extend((reading_id, name, value) for name, value in measurements.items() if name not in _COLUMN_SET)
        if bare:
            conn.executemany(_INSERT_BARE_READING, bare)
        if main:
            conn.executemany(_INSERT_READING, main)
        if extra:
            conn.executemany("INSERT INTO reading_values (reading_id, name, value) VALUES (?,?,?)", extra)


class _LinkEvents:
    name = "link events"

    def insert(self, conn: Connection, rows: Sequence[tuple[int, str, str, str | None]]) -> None:
        conn.executemany("INSERT INTO link_events (at, controller_id, state, error) VALUES (?,?,?,?)", rows)


@dataclass(frozen=True, slots=True)
class ReadingRecord:
    id: int
    at: int
    controller_id: str
    power_w: float | None
    energy_kwh: float | None
    faults: frozenset[str]
    measurements: Mapping[str, float]

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso_local(self.at, zone, "milliseconds"),
            "controller_id": self.controller_id,
            "power_w": self.power_w,
            "energy_kwh": self.energy_kwh,
            "faults": sorted(self.faults),
            "measurements": dict(self.measurements),
        }


def prune_readings(conn: Connection, cutoff_ms: int, limit: int = PRUNE_BATCH) -> bool:
    """Delete readings older than ``cutoff_ms`` among the ``limit`` oldest by id (and their
    values); True if all of those were old, so that more may be left."""
    lo, hi, old = conn.execute(
        "SELECT MIN(id), MAX(id), COUNT(*) FROM (SELECT id, at FROM readings ORDER BY id LIMIT ?) head WHERE at < ?",
        [limit, cutoff_ms],
    ).fetchone()
    if not old:
        return False
    span = "FROM readings WHERE id BETWEEN ? AND ? AND at < ?"
    conn.execute(f"DELETE FROM reading_values WHERE reading_id IN (SELECT id {span})", [lo, hi, cutoff_ms])
    conn.execute(f"DELETE {span}", [lo, hi, cutoff_ms])
    return bool(old == limit)


class Observations:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers
        self.state_changes_sink = _StateChanges()
        self.readings_sink = _Readings()
        self.link_events_sink = _LinkEvents()

    # -- recording (synchronous, never waits) ------------------------------------------------

    def record_state_changes(self, controller_id: str, at: float, changes: Mapping[ChannelId, ChannelReading]) -> None:
        """``at``: ``time.time()`` of the reading. ``changes`` is kept as given (readings are frozen)."""
        self._writer.record(self.state_changes_sink, (controller_id, to_ms(at), changes))

    def record_reading(self, controller_id: str, reading: ControllerReading) -> None:
        self._writer.record(self.readings_sink, (controller_id, reading))

    def record_link(self, controller_id: str, state: str, error: str | None) -> None:
        self._writer.record(self.link_events_sink, (now_ms(), controller_id, state, error))

    # -- reading back ------------------------------------------------------------------------

    async def readings(
        self, controller_id: str, *, since: int | None = None, until: int | None = None, limit: int = 1000
    ) -> list[ReadingRecord]:
        """A controller's readings between two UTC ms (inclusive), oldest first. Readings are
        indexed by hour, then controller (migration 0021): the span is read one seek per hour of
        it (within the hours that have readings), and stops at ``limit``."""

        def read(conn: Connection) -> list[ReadingRecord]:
            first, last = conn.execute(
                f"SELECT MIN(at / {HOUR_MS}) AS first, MAX(at / {HOUR_MS}) AS last FROM readings"
            ).fetchone().values()
            if first is None:
                return []
            lo = since if since is not None else 0
            hi = until if until is not None else 2**62
            rows: list[dict[str, Any]] = []
            hour, last = max(first, lo // HOUR_MS), min(last, hi // HOUR_MS)
            while hour <= last and len(rows) < limit:
                hours = list(range(hour, min(last, hour + HOURS_PER_QUERY - 1) + 1))
                rows += conn.execute(
                    f"SELECT * FROM readings WHERE (at / {HOUR_MS}) IN ({','.join('?' * len(hours))}) AND controller_id = ?"
                    " AND at BETWEEN ? AND ? ORDER BY at, id LIMIT ?",
                    [*hours, controller_id, lo, hi, limit - len(rows)],
                ).fetchall()
                hour = hours[-1] + 1
            values: dict[int, dict[str, float]] = {}
            ids = [r["id"] for r in rows]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for v in conn.execute(
                    f"SELECT reading_id, name, value FROM reading_values WHERE reading_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ):
                    values.setdefault(v["reading_id"], {})[v["name"]] = v["value"]
            return [
                ReadingRecord(
                    r["id"], r["at"], r["controller_id"], r["power_w"], r["energy_kwh"], fault_set(r["faults"]),
                    {**{n: r[n] for n in READING_COLUMNS if r[n] is not None}, **values.get(r["id"], {})},
                )
                for r in rows
            ]

        return await self._readers.run(read)

    async def state_changes(self, controller_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """A controller's latest state changes, newest first; ``at`` in UTC ms."""
        rows = await self._readers.query(
            "SELECT * FROM state_changes WHERE controller_id = ? ORDER BY at DESC, id DESC LIMIT ?", [controller_id, limit]
        )
        return [{**r, "is_on": None if r["is_on"] is None else bool(r["is_on"]), "faults": fault_set(r["faults"])} for r in rows]

    async def link_events(self, controller_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """A controller's latest link events, newest first; ``at`` in UTC ms."""
        return await self._readers.query(
            "SELECT * FROM link_events WHERE controller_id = ? ORDER BY at DESC, id DESC LIMIT ?", [controller_id, limit]
        )
