"""Users: name, role, a maintenance user's crew, the Argon2id hash of the password. A changed
password or a disabled user ends every session of that user in the same transaction; disabling
also revokes the user's API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from lightctl.model.times import iso_local
from lightctl.store.readers import ReaderPool, Row
from lightctl.store.sessions import end_user_sessions
from lightctl.store.sql import Connection
from lightctl.store.tokens import revoke_user_tokens
from lightctl.store.writer import Writer


class NameTaken(ValueError):
    """A user with that name exists already."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    role: str
    crew: str | None
    password_hash: str
    created_at: int
    created_by: str
    password_changed_at: int
    last_login_at: int | None
    disabled_at: int | None
    disabled_by: str | None

    @classmethod
    def from_row(cls, row: Row) -> UserRecord:
        return cls(**row)

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        """Everything but the password's hash."""
        return {
            "name": self.name,
            "role": self.role,
            "crew": self.crew,
            "disabled": self.disabled_at is not None,
            "disabled_at": iso_local(self.disabled_at, zone),
            "disabled_by": self.disabled_by,
            "created_at": iso_local(self.created_at, zone),
            "created_by": self.created_by,
            "password_changed_at": iso_local(self.password_changed_at, zone),
            "last_login_at": iso_local(self.last_login_at, zone),
        }


class Users:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def count(self) -> int:
        rows = await self._readers.query("SELECT COUNT(*) AS n FROM users")
        return int(rows[0]["n"])

    async def get(self, name: str) -> UserRecord | None:
        rows = await self._readers.query("SELECT * FROM users WHERE name = ?", [name])
        return UserRecord.from_row(rows[0]) if rows else None

    async def all(self) -> list[UserRecord]:
        return [UserRecord.from_row(r) for r in await self._readers.query("SELECT * FROM users ORDER BY name")]

    async def add(self, *, name: str, role: str, crew: str | None, password_hash: str, at: int, by: str) -> int:
        def job(conn: Connection) -> int:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone() is not None:
                raise NameTaken(f"user {name!r} exists already")
            cur = conn.execute(
                "INSERT INTO users (name, role, crew, password_hash, created_at, created_by, password_changed_at)"
                " VALUES (?,?,?,?,?,?,?)",
                [name, role, crew, password_hash, at, by, at],
            )
            return int(cur.lastrowid or 0)

        return await self._writer.write(job)

    async def change_password(self, user_id: int, password_hash: str, at: int) -> int:
        """A new password; every session of the user ends. How many ended."""

        def job(conn: Connection) -> int:
            conn.execute(
                "UPDATE users SET password_hash=?, password_changed_at=? WHERE id=?", [password_hash, at, user_id]
            )
            return end_user_sessions(conn, user_id, at, "password changed")

        return await self._writer.write(job)

    async def rehash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        """The same password hashed with the current parameters (sessions stay); only if the
        hash is still the one that was checked."""
        await self._writer.write(
            lambda conn: conn.execute(
                "UPDATE users SET password_hash=? WHERE id=? AND password_hash=?", [new_hash, user_id, old_hash]
            )
        )

    async def disable(self, user_id: int, at: int, by: str) -> tuple[int, int]:
        """Disable a user: its sessions end and its tokens are revoked. (sessions, tokens)."""

        def job(conn: Connection) -> tuple[int, int]:
            conn.execute(
                "UPDATE users SET disabled_at=?, disabled_by=? WHERE id=? AND disabled_at IS NULL", [at, by, user_id]
            )
            return end_user_sessions(conn, user_id, at, f"user disabled by {by}"), revoke_user_tokens(conn, user_id, at, by)

        return await self._writer.write(job)

    async def enable(self, user_id: int) -> None:
        await self._writer.write(
            lambda conn: conn.execute("UPDATE users SET disabled_at=NULL, disabled_by=NULL WHERE id=?", [user_id])
        )

    async def update(self, user_id: int, *, role: str, crew: str | None) -> None:
        await self._writer.write(lambda conn: conn.execute("UPDATE users SET role=?, crew=? WHERE id=?", [role, crew, user_id]))

    async def signed_in(self, user_id: int, at: int) -> None:
        await self._writer.write(lambda conn: conn.execute("UPDATE users SET last_login_at=? WHERE id=?", [at, user_id]))
