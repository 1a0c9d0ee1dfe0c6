"""The city's copies of what its districts measured: their energy roll-ups (hours; the city sums
its own days and months from them, in the installation's zone, as a district does) and their
lighting-on inspections, written in the transaction that records the district's event (see
:meth:`lightctl.store.federation.FederationRecords.receive`), so a copy is never half-taken and
never taken twice. The city's reports then read them as a district's read its own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from lightctl.model.energy import LocalCalendar, month_after
from lightctl.store.sql import Connection

HOUR_COLUMNS = (
    "hour", "controller_id", "channel_id", "kwh", "metered_kwh", "peak_kwh", "valley_kwh",
    "q0_kwh", "q1_kwh", "q2_kwh", "q3_kwh", "covered_s",
)
"""An hour row as a district sends it (the columns of energy_hours, in this order)."""
SUMMED = ("kwh", "metered_kwh", "peak_kwh", "valley_kwh", "covered_s")
INSPECTION_ROW_COLUMNS = ("site_id", "district_id", "region", "lighting_class", "luminaires", "should_be_lit", "lit", "not_reported", "faulty")
INSPECTION_SITE_COLUMNS = ("site_id", "district_id", "region", "controllers", "online")

_UPSERT_HOURS = (
    f"INSERT INTO energy_hours ({', '.join(HOUR_COLUMNS)}) VALUES ({', '.join('?' * len(HOUR_COLUMNS))})"
    " ON CONFLICT (hour, controller_id, channel_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in HOUR_COLUMNS[3:])
)


def _resum_sql(table: str, key: str, controllers: int) -> str:
    sums = ", ".join(f"SUM({c})" for c in SUMMED)
    marks = ",".join("?" * controllers)
    return (
        f"INSERT INTO {table} ({key}, controller_id, channel_id, {', '.join(SUMMED)})"
        f" SELECT CAST(? AS BIGINT), controller_id, channel_id, {sums} FROM energy_hours"
        f" WHERE hour >= ? AND hour < ? AND controller_id IN ({marks}) GROUP BY controller_id, channel_id"
        f" ON CONFLICT ({key}, controller_id, channel_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in SUMMED)
    )


def copy_hours(conn: Connection, calendar: LocalCalendar, rows: Sequence[Sequence[Any]]) -> int:
    """Upsert a district's hour rows, then sum the days and months they fall in again (for their
    controllers). Rows of the wrong shape are refused whole (ValueError)."""
    for row in rows:
        if len(row) != len(HOUR_COLUMNS) or not isinstance(row[0], int) or not all(isinstance(v, str) for v in row[1:3]):
            raise ValueError(f"an energy hour row is ({', '.join(HOUR_COLUMNS)}), not {row!r}")
    conn.executemany(_UPSERT_HOURS, [list(r) for r in rows])
    controllers = sorted({str(r[1]) for r in rows})
    dates = {calendar.date_of(int(r[0])) for r in rows}
    spans = {
        "energy_days": ("day", {(calendar.day_start(d), calendar.day_start(d + timedelta(days=1))) for d in dates}),
        "energy_months": ("month", {(calendar.day_start(d.replace(day=1)), calendar.day_start(month_after(d))) for d in dates}),
    }
    for table, (key, starts) in spans.items():
        sql = _resum_sql(table, key, len(controllers))
        for start, end in sorted(starts):
            conn.execute(sql, [start, start, end, *controllers])
    return len(rows)


def copy_inspection(conn: Connection, district: str, body: dict[str, Any]) -> int | None:
    """A district's inspection, or one part of it (``part`` > 0: more of its rows and sites), as
    one of the city's; the city's id (None: already taken)."""
    own_id, part = int(body["id"]), int(body.get("part", 0))
    rows, sites = _rows(body["rows"], INSPECTION_ROW_COLUMNS), _rows(body["sites"], INSPECTION_SITE_COLUMNS)
    seen = conn.execute(
        "SELECT inspection_id FROM federation_inspection_copies WHERE district = ? AND district_inspection_id = ?", [district, own_id]
    ).fetchone()
    if seen is not None and part == 0:
        return None
    if seen is None and part > 0:
        raise ValueError(f"part {part} of inspection {own_id} came without its first part")
    if seen is not None:
        inspection_id = int(seen["inspection_id"] if isinstance(seen, dict) else seen[0])
    else:
        cur = conn.execute("INSERT INTO lighting_inspections (at, instant, source) VALUES (?,?,?)",
                           [int(body["at"]), str(body["instant"]), f"{district}:{body['source']}"])
        inspection_id = int(cur.lastrowid or 0)
        conn.execute(
            "INSERT INTO federation_inspection_copies (district, district_inspection_id, inspection_id) VALUES (?,?,?)",
            [district, own_id, inspection_id],
        )
    conn.executemany(
        f"INSERT INTO lighting_inspection_rows (inspection_id, {', '.join(INSPECTION_ROW_COLUMNS)})"
        f" VALUES (?,{','.join('?' * len(INSPECTION_ROW_COLUMNS))}) ON CONFLICT (inspection_id, site_id, lighting_class) DO NOTHING",
        [(inspection_id, *row) for row in rows],
    )
    conn.executemany(
        f"INSERT INTO lighting_inspection_sites (inspection_id, {', '.join(INSPECTION_SITE_COLUMNS)})"
        f" VALUES (?,{','.join('?' * len(INSPECTION_SITE_COLUMNS))}) ON CONFLICT (inspection_id, site_id) DO NOTHING",
        [(inspection_id, *row) for row in sites],
    )
    return inspection_id


def _rows(rows: Iterable[Any], columns: Sequence[str]) -> list[list[Any]]:
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(columns):
            raise ValueError(f"an inspection row is ({', '.join(columns)}), not {row!r}")
        out.append(row)
    return out


# -- what a district sends -----------------------------------------------------------------------


def note_hours_since(conn: Connection, first_hour: int) -> None:
    """Note every hour with energy rows from ``first_hour`` (UTC ms) as changed (a district's first
    round: what it had before it sent anything)."""
    conn.execute(
        "INSERT INTO energy_hours_changed (hour, version) SELECT DISTINCT hour, 1 FROM energy_hours WHERE hour >= ?"
        " ON CONFLICT (hour) DO NOTHING", [first_hour]
    )


def changed_hours(conn: Connection, limit: int) -> list[tuple[int, int]]:
    """The hours noted as changed (energy_hours_changed) with their notes' versions, oldest first."""
    rows = conn.execute("SELECT hour, version FROM energy_hours_changed ORDER BY hour LIMIT ?", [limit]).fetchall()
    return [(int(r["hour"]), int(r["version"])) if isinstance(r, dict) else (int(r[0]), int(r[1])) for r in rows]


def hour_rows(conn: Connection, hour: int) -> list[tuple[Any, ...]]:
    """A district's rows of one hour, in the order :data:`HOUR_COLUMNS`."""
    rows = conn.execute(
        f"SELECT {', '.join(HOUR_COLUMNS)} FROM energy_hours WHERE hour = ? ORDER BY controller_id, channel_id", [hour]
    ).fetchall()
    return [tuple(r[c] for c in HOUR_COLUMNS) if isinstance(r, dict) else tuple(r) for r in rows]


def forget_changed(conn: Connection, notes: Sequence[tuple[int, int]]) -> None:
    """Remove notes (hour, version) that were not raised since they were read."""
    conn.executemany("DELETE FROM energy_hours_changed WHERE hour = ? AND version = ?", [list(note) for note in notes])


def inspections_after(conn: Connection, after_id: int, limit: int) -> list[dict[str, Any]]:
    """A district's inspections after ``after_id``, oldest first, each with its rows and sites."""
    found = conn.execute(
        "SELECT id, at, instant, source FROM lighting_inspections WHERE id > ? ORDER BY id LIMIT ?", [after_id, limit]
    ).fetchall()
    out = []
    for head in found:
        head = dict(head) if isinstance(head, dict) else dict(zip(("id", "at", "instant", "source"), head, strict=True))
        rows = conn.execute(
            f"SELECT {', '.join(INSPECTION_ROW_COLUMNS)} FROM lighting_inspection_rows WHERE inspection_id = ?"
            " ORDER BY site_id, lighting_class", [head["id"]]
        ).fetchall()
        sites = conn.execute(
            f"SELECT {', '.join(INSPECTION_SITE_COLUMNS)} FROM lighting_inspection_sites WHERE inspection_id = ? ORDER BY site_id",
            [head["id"]],
        ).fetchall()
        out.append({
            **head,
            "rows": [[r[c] for c in INSPECTION_ROW_COLUMNS] if isinstance(r, dict) else list(r) for r in rows],
            "sites": [[r[c] for c in INSPECTION_SITE_COLUMNS] if isinstance(r, dict) else list(r) for r in sites],
        })
    return out
