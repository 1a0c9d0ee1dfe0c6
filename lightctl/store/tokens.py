"""API tokens: the SHA-256 of the random value (shown once, when created), the user it acts for
and the role it is scoped to, its expiry and revocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from lightctl.model.times import iso_local
from lightctl.store.readers import ReaderPool
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer

_JOINED = (
    "SELECT t.id, t.user_id, u.name AS user_name, u.role AS user_role, u.crew, u.disabled_at AS user_disabled_at,"
    " t.role, t.label, t.created_at, t.created_by, t.expires_at, t.last_used_at, t.revoked_at, t.revoked_by"
    " FROM api_tokens t JOIN users u ON u.id = t.user_id"
)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    user_id: int
    user_name: str
    user_role: str
    crew: str | None
    user_disabled_at: int | None
    role: str
    label: str
    created_at: int
    created_by: str
    expires_at: int | None
    last_used_at: int | None
    revoked_at: int | None
    revoked_by: str | None

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user_name,
            "role": self.role,
            "label": self.label,
            "created_at": iso_local(self.created_at, zone),
            "created_by": self.created_by,
            "expires_at": iso_local(self.expires_at, zone),
            "last_used_at": iso_local(self.last_used_at, zone),
            "revoked_at": iso_local(self.revoked_at, zone),
            "revoked_by": self.revoked_by,
        }


def revoke_user_tokens(conn: Connection, user_id: int, at: int, by: str) -> int:
    """Revoke every token of a user (inside the caller's transaction); how many."""
    return conn.execute(
        "UPDATE api_tokens SET revoked_at=?, revoked_by=? WHERE user_id=? AND revoked_at IS NULL", [at, by, user_id]
    ).rowcount


class ApiTokens:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def create(
        self, *, secret_hash: str, user_id: int, role: str, label: str, at: int, by: str, expires_at: int | None
    ) -> int:
        def job(conn: Connection) -> int:
            cur = conn.execute(
                "INSERT INTO api_tokens (secret_hash, user_id, role, label, created_at, created_by, expires_at)"
                " VALUES (?,?,?,?,?,?,?)",
                [secret_hash, user_id, role, label, at, by, expires_at],
            )
            return int(cur.lastrowid or 0)

        return await self._writer.write(job)

    async def find(self, secret_hash: str) -> TokenRecord | None:
        rows = await self._readers.query(f"{_JOINED} WHERE t.secret_hash = ?", [secret_hash])
        return TokenRecord(**rows[0]) if rows else None

    async def get(self, token_id: int) -> TokenRecord | None:
        rows = await self._readers.query(f"{_JOINED} WHERE t.id = ?", [token_id])
        return TokenRecord(**rows[0]) if rows else None

    async def all(self) -> list[TokenRecord]:
        return [TokenRecord(**r) for r in await self._readers.query(f"{_JOINED} ORDER BY t.id")]

    async def touch(self, token_id: int, at: int) -> None:
        await self._writer.write(lambda conn: conn.execute("UPDATE api_tokens SET last_used_at=? WHERE id=?", [at, token_id]))

    async def revoke(self, token_id: int, at: int, by: str) -> bool:
        """Revoke one token; False if it was revoked already (or never existed)."""

        def job(conn: Connection) -> bool:
            cur = conn.execute(
                "UPDATE api_tokens SET revoked_at=?, revoked_by=? WHERE id=? AND revoked_at IS NULL", [at, by, token_id]
            )
            return cur.rowcount > 0

        return await self._writer.write(job)
