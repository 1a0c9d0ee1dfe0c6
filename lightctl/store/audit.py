"""The audit: every state-changing request, accepted or refused, and every change the CLI makes
on the records directly, with who (user, role, how they signed in), from where, what, and the
result. Append-only: no route and no method here changes what a row says happened, and none
deletes one.

A request is recorded twice, like a command, and both times by adding a row: in ``audit`` as
``pending`` before it is handled (so that a kill during a switch never leaves a change without its
record), and in ``audit_outcomes`` with who it turned out to be and how it ended. A request without
an outcome at start was cut short by a crash: its outcome ``interrupted`` is added then."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import tzinfo
from typing import Any

from lightctl.model.times import iso_local
from lightctl.store.readers import ReaderPool
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: int
    user_name: str | None
    role: str | None
    via: str
    """"session", "token", "local", or "none" (no valid credentials)."""
    address: str | None
    method: str
    path: str
    detail: str | None
    """What was asked, as JSON, secrets left out (lightctl.services.users.audit)."""
    status: int
    result: str
    """"accepted", "refused" or "failed"."""
    error: str | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    entry: AuditEntry

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, **asdict(self.entry)}
        out["at"] = iso_local(self.entry.at, zone, "milliseconds")
        out["user"] = out.pop("user_name")
        return out


AUDITED = (
    "SELECT * FROM (SELECT a.id, a.at, COALESCE(o.user_name, a.user_name) AS user_name,"
    " COALESCE(o.role, a.role) AS role, COALESCE(o.via, a.via) AS via, a.address, a.method, a.path, a.detail,"
    " COALESCE(o.status, a.status) AS status, COALESCE(o.result, a.result) AS result,"
    " COALESCE(o.error, a.error) AS error"
    " FROM audit a LEFT JOIN audit_outcomes o ON o.audit_id = a.id) AS audited"
)
"""Each request with its outcome where it has one (``pending`` while it is being handled)."""


class AuditLog:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def record(self, entry: AuditEntry) -> int:
        row = asdict(entry)

        def job(conn: Connection) -> int:
            cur = conn.execute(
                f"INSERT INTO audit ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
            )
            return int(cur.lastrowid or 0)

        return await self._writer.write(job)

    async def begin(self, entry: AuditEntry) -> int:
        """Record a request about to be handled, as ``pending``; its id. ``entry``'s status and
        result are ignored."""
        return await self.record(replace(entry, status=0, result="pending", error=None))

    async def finish(self, audit_id: int, entry: AuditEntry, status: int, result: str, error: str | None) -> None:
        """A pending request's outcome, with who it turned out to be (``entry``'s user, role and
        how they signed in: known only once it was authenticated)."""
        row = [audit_id, entry.at, entry.user_name, entry.role, entry.via, status, result, error]

        def job(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO audit_outcomes (audit_id, at, user_name, role, via, status, result, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

        await self._writer.write(job)

    async def query(
        self, *, user: str | None = None, since: int | None = None, until: int | None = None, limit: int = 200
    ) -> list[AuditRecord]:
        """Rows newest first: of one user name, from ``since`` (inclusive) to ``until`` (exclusive)."""
        where: list[str] = []
        params: list[Any] = []
        if user is not None:
            where.append("user_name = ?")
            params.append(user)
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if until is not None:
            where.append("at < ?")
            params.append(until)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = await self._readers.query(f"{AUDITED}{clause} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [AuditRecord(r.pop("id"), AuditEntry(**r)) for r in rows]


def mark_interrupted(conn: Connection, at: int) -> int:
    """Requests a crash cut short (pending, no outcome) get the outcome ``interrupted``; how many."""
    return conn.execute(
        "INSERT INTO audit_outcomes (audit_id, at, user_name, role, via, status, result, error)"
        " SELECT id, ?, user_name, role, via, 0, 'interrupted', 'cut short: the daemon stopped before it ended'"
        " FROM audit WHERE result = 'pending' AND id NOT IN (SELECT audit_id FROM audit_outcomes)",
        [at],
    ).rowcount
