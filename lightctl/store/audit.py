"""The audit: every state-changing request, accepted or refused, and every change the CLI makes
on the records directly, with who (user, role, how they signed in), from where, what, and the
result. Append-only: this repository can add rows and read them, nothing else."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from datetime import tzinfo
from typing import Any

from lightctl.model.times import iso_local
from lightctl.store.readers import ReaderPool
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


class AuditLog:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def record(self, entry: AuditEntry) -> int:
        row = asdict(entry)

        def job(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                f"INSERT INTO audit ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
            )
            return int(cur.lastrowid or 0)

        return await self._writer.write(job)

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
        rows = await self._readers.query(f"SELECT * FROM audit{clause} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [AuditRecord(r.pop("id"), AuditEntry(**r)) for r in rows]
