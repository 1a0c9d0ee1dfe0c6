"""Server-side sessions: the SHA-256 of the cookie's random value, the CSRF token the console
sends back with every change, when it began and was last used, and why it ended. Whether a
session is still valid (timeouts, its user disabled) is decided by lightctl.services.users.auth
on every request, from these rows and the user's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from lightctl.model.times import iso_local
from lightctl.store.readers import ReaderPool
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer

_JOINED = (
    "SELECT s.id, s.user_id, u.name AS user_name, u.role, u.crew, u.disabled_at AS user_disabled_at,"
    " s.csrf_token, s.address, s.created_at, s.last_seen_at, s.ended_at, s.ended_why"
    " FROM sessions s JOIN users u ON u.id = s.user_id"
)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: int
    user_id: int
    user_name: str
    role: str
    crew: str | None
    user_disabled_at: int | None
    csrf_token: str
    address: str | None
    created_at: int
    last_seen_at: int
    ended_at: int | None
    ended_why: str | None

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        """Without the CSRF token: an administrator's list of sessions shows no secret."""
        return {
            "id": self.id,
            "user": self.user_name,
            "role": self.role,
            "address": self.address,
            "created_at": iso_local(self.created_at, zone),
            "last_seen_at": iso_local(self.last_seen_at, zone),
            "ended_at": iso_local(self.ended_at, zone),
            "ended_why": self.ended_why,
        }


def end_user_sessions(conn: Connection, user_id: int, at: int, why: str) -> int:
    """End every open session of a user (inside the caller's transaction); how many."""
    return conn.execute(
        "UPDATE sessions SET ended_at=?, ended_why=? WHERE user_id=? AND ended_at IS NULL", [at, why, user_id]
    ).rowcount


class Sessions:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def create(self, *, secret_hash: str, user_id: int, csrf_token: str, address: str | None, at: int) -> int:
        def job(conn: Connection) -> int:
            cur = conn.execute(
                "INSERT INTO sessions (secret_hash, user_id, csrf_token, address, created_at, last_seen_at)"
                " VALUES (?,?,?,?,?,?)",
                [secret_hash, user_id, csrf_token, address, at, at],
            )
            return int(cur.lastrowid or 0)

        return await self._writer.write(job)

    async def find(self, secret_hash: str) -> SessionRecord | None:
        rows = await self._readers.query(f"{_JOINED} WHERE s.secret_hash = ?", [secret_hash])
        return SessionRecord(**rows[0]) if rows else None

    async def get(self, session_id: int) -> SessionRecord | None:
        rows = await self._readers.query(f"{_JOINED} WHERE s.id = ?", [session_id])
        return SessionRecord(**rows[0]) if rows else None

    async def open_since(self, since: int) -> list[SessionRecord]:
        """Sessions not ended and used since ``since`` (the caller's idle limit), newest first."""
        rows = await self._readers.query(
            f"{_JOINED} WHERE s.ended_at IS NULL AND s.last_seen_at >= ? ORDER BY s.id DESC", [since]
        )
        return [SessionRecord(**r) for r in rows]

    async def touch(self, session_id: int, at: int) -> None:
        await self._writer.write(
            lambda conn: conn.execute("UPDATE sessions SET last_seen_at=? WHERE id=? AND last_seen_at < ?", [at, session_id, at])
        )

    async def end(self, session_id: int, at: int, why: str) -> bool:
        """End one session; False if it had ended already (or never existed)."""

        def job(conn: Connection) -> bool:
            cur = conn.execute(
                "UPDATE sessions SET ended_at=?, ended_why=? WHERE id=? AND ended_at IS NULL", [at, why, session_id]
            )
            return cur.rowcount > 0

        return await self._writer.write(job)
