"""Work orders with the faults they cover and every step taken on them, and the photos given
with feedback (their bytes are files named by their SHA-256; the table says what and who).

Writes are functions of a connection, so that a fault service's batch can file a work order in
the same transaction as the fault that caused it (``insert``, ``update``, ``add_step``, ``link``);
reads go through :class:`WorkOrders`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lightctl.model.faults import Severity
from lightctl.model.maintenance import WorkOrder, WorkOrderState, WorkOrderStep
from lightctl.store.readers import ReaderPool, Row
from lightctl.store.sql import Connection

COLUMNS = (
    "id", "source", "reference", "title", "description", "severity", "state", "district_id", "site_id",
    "controller_id", "channel_id", "lat", "lon", "lighting", "crew_id", "filed_at", "filed_by", "due_at",
    "due_basis", "due_estimated", "dispatched_at", "handling_at", "handled_at", "verified_at", "closed_at",
    "closed_by", "close_reason", "closed_with_active_fault", "deferred_at", "deferred_by", "defer_reason",
    "deferred_until", "overdue_notified_at",
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM work_orders"
OPEN_STATES = tuple(s.value for s in WorkOrderState if s is not WorkOrderState.CLOSED)


def _values(order: WorkOrder) -> list[Any]:
    return [
        order.source, order.reference, order.title, order.description, order.severity.value, order.state.value,
        order.district_id, order.site_id, order.controller_id, order.channel_id, order.lat, order.lon,
        order.lighting, order.crew_id, order.filed_at, order.filed_by, order.due_at, order.due_basis,
        order.due_estimated, order.dispatched_at, order.handling_at, order.handled_at, order.verified_at,
        order.closed_at, order.closed_by, order.close_reason, order.closed_with_active_fault, order.deferred_at,
        order.deferred_by, order.defer_reason, order.deferred_until, order.overdue_notified_at,
    ]


def insert(conn: Connection, order: WorkOrder, now: int) -> int:
    """Record a new work order (its ``id`` is given by the store), its faults and its steps."""
    names = COLUMNS[1:]
    cur = conn.execute(
        f"INSERT INTO work_orders ({', '.join(names)}, updated_at) VALUES ({', '.join('?' for _ in names)}, ?)",
        [*_values(order), now],
    )
    order.id = int(cur.lastrowid or 0)
    link(conn, order.id, order.faults)
    for step in order.steps:
        add_step(conn, order.id, step)
    return order.id


def update(conn: Connection, order: WorkOrder, now: int) -> None:
    names = COLUMNS[1:]
    conn.execute(
        f"UPDATE work_orders SET {', '.join(f'{n} = ?' for n in names)}, updated_at = ? WHERE id = ?",
        [*_values(order), now, order.id],
    )


def add_step(conn: Connection, order_id: int, step: WorkOrderStep) -> None:
    conn.execute(
        "INSERT INTO work_order_steps (work_order_id, step, at, person, crew_id, note, photo) VALUES (?,?,?,?,?,?,?)",
        [order_id, step.step, step.at, step.person, step.crew_id, step.note, step.photo],
    )


def link(conn: Connection, order_id: int, fault_ids: Iterable[int]) -> None:
    conn.executemany(
        "INSERT INTO work_order_faults (work_order_id, fault_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(order_id, fid) for fid in fault_ids],
    )


def add_photo(conn: Connection, sha256: str, content_type: str, size: int, at: int, by: str) -> None:
    conn.execute(
        "INSERT INTO photos (sha256, content_type, size_bytes, stored_at, stored_by) VALUES (?,?,?,?,?)"
        " ON CONFLICT (sha256) DO NOTHING",
        [sha256, content_type, size, at, by],
    )


def order_of(row: Row, faults: list[int], steps: list[WorkOrderStep]) -> WorkOrder:
    return WorkOrder(
        id=row["id"], source=row["source"], reference=row["reference"], title=row["title"],
        description=row["description"], severity=Severity(row["severity"]), state=WorkOrderState(row["state"]),
        district_id=row["district_id"], site_id=row["site_id"], controller_id=row["controller_id"],
        channel_id=row["channel_id"], lat=row["lat"], lon=row["lon"], lighting=row["lighting"],
        crew_id=row["crew_id"], filed_at=row["filed_at"], filed_by=row["filed_by"], due_at=row["due_at"],
        due_basis=row["due_basis"], due_estimated=bool(row["due_estimated"]), dispatched_at=row["dispatched_at"],
        handling_at=row["handling_at"], handled_at=row["handled_at"], verified_at=row["verified_at"],
        closed_at=row["closed_at"], closed_by=row["closed_by"], close_reason=row["close_reason"],
        closed_with_active_fault=bool(row["closed_with_active_fault"]), deferred_at=row["deferred_at"],
        deferred_by=row["deferred_by"], defer_reason=row["defer_reason"], deferred_until=row["deferred_until"],
        overdue_notified_at=row["overdue_notified_at"], faults=faults, steps=steps,
    )


class WorkOrders:
    def __init__(self, readers: ReaderPool) -> None:
        self._readers = readers

    async def get(self, order_id: int) -> WorkOrder | None:
        found = await self.query(ids=[order_id])
        return found[0] if found else None

    async def query(
        self,
        *,
        ids: Iterable[int] | None = None,
        open_only: bool = False,
        crew: str | None = None,
        site: str | None = None,
        state: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 1000,
    ) -> list[WorkOrder]:
        """Work orders with their faults and steps; open ones by deadline, the rest newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if ids is not None:
            wanted = list(ids)
            clauses.append(f"id IN ({', '.join('?' for _ in wanted)})" if wanted else "1 = 0")
            params += wanted
        if open_only:
            clauses.append(f"state IN ({', '.join('?' for _ in OPEN_STATES)})")
            params += OPEN_STATES
        for column, value in (("crew_id", crew), ("site_id", site), ("state", state)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("filed_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("filed_at < ?")
            params.append(until)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        order = "COALESCE(deferred_until, due_at), id" if open_only else "filed_at DESC, id DESC"
        rows = await self._readers.query(f"{SELECT}{where} ORDER BY {order} LIMIT ?", [*params, limit])
        if not rows:
            return []
        order_ids = [r["id"] for r in rows]
        marks = ", ".join("?" for _ in order_ids)
        links = await self._readers.query(
            f"SELECT work_order_id, fault_id FROM work_order_faults WHERE work_order_id IN ({marks}) ORDER BY fault_id",
            order_ids,
        )
        step_rows = await self._readers.query(
            "SELECT work_order_id, step, at, person, crew_id, note, photo FROM work_order_steps"
            f" WHERE work_order_id IN ({marks}) ORDER BY at, id",
            order_ids,
        )
        faults: dict[int, list[int]] = {oid: [] for oid in order_ids}
        for link_row in links:
            faults[link_row["work_order_id"]].append(link_row["fault_id"])
        steps: dict[int, list[WorkOrderStep]] = {oid: [] for oid in order_ids}
        for s in step_rows:
            steps[s["work_order_id"]].append(WorkOrderStep(s["step"], s["at"], s["person"], s["note"], s["crew_id"], s["photo"]))
        return [order_of(r, faults[r["id"]], steps[r["id"]]) for r in rows]

    async def open_fault_links(self) -> list[tuple[int, int, str]]:
        """(work order, fault, fault key) for every open work order: a fault of a key already in
        an open order joins it instead of filing another."""
        marks = ", ".join("?" for _ in OPEN_STATES)
        rows = await self._readers.query(
            "SELECT l.work_order_id, l.fault_id, f.fault_key FROM work_order_faults l"
            " JOIN work_orders w ON w.id = l.work_order_id JOIN faults f ON f.id = l.fault_id"
            f" WHERE w.state IN ({marks})",
            OPEN_STATES,
        )
        return [(r["work_order_id"], r["fault_id"], r["fault_key"]) for r in rows]

    async def orders_of_faults(self, fault_ids: Iterable[int]) -> dict[int, list[int]]:
        wanted = list(fault_ids)
        if not wanted:
            return {}
        rows = await self._readers.query(
            f"SELECT fault_id, work_order_id FROM work_order_faults WHERE fault_id IN ({', '.join('?' for _ in wanted)})",
            wanted,
        )
        out: dict[int, list[int]] = {}
        for r in rows:
            out.setdefault(r["fault_id"], []).append(r["work_order_id"])
        return out

    async def photo(self, sha256: str) -> Row | None:
        rows = await self._readers.query(
            "SELECT sha256, content_type, size_bytes, stored_at, stored_by FROM photos WHERE sha256 = ?", [sha256]
        )
        return rows[0] if rows else None
