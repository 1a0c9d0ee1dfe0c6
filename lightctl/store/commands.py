"""Commands and every controller's result: the audit of the one switch.

A command is recorded twice: a ``running`` row before it is dispatched (who pressed what is never
lost) and, in one transaction, its outcome with every controller's result. A command found still
``running`` when the store opens was cut short by a crash and is marked ``interrupted``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from lightctl.model.times import iso_local, now_ms
from lightctl.store.readers import ReaderPool, Row
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One controller's part in a command, as the daemon reports it."""

    controller_id: str
    status: str
    error_kind: str | None
    error: str | None
    operations: int
    channels: int
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class CommandRecord:
    id: int
    at: int
    user: str
    source: str
    action: str
    scene: str | None
    target: str | None
    status: str
    finished_at: int | None
    elapsed_s: float | None
    confirmed: int | None
    unconfirmed: int | None
    failed: int | None
    detail: str | None

    @classmethod
    def from_row(cls, row: Row) -> CommandRecord:
        return cls(**{**{k: v for k, v in row.items() if k != "user_name"}, "user": row["user_name"]})

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso_local(self.at, zone, "milliseconds"),
            "user": self.user,
            "source": self.source,
            "action": self.action,
            "scene": self.scene,
            "target": self.target,
            "status": self.status,
            "finished_at": iso_local(self.finished_at, zone, "milliseconds"),
            "elapsed_s": self.elapsed_s,
            "confirmed": self.confirmed,
            "unconfirmed": self.unconfirmed,
            "failed": self.failed,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ResultRecord:
    command_id: int
    controller_id: str
    status: str
    error_kind: str | None
    error: str | None
    operations: int | None
    channels: int | None
    elapsed_s: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "controller_id": self.controller_id,
            "status": self.status,
            "error_kind": self.error_kind,
            "error": self.error,
            "operations": self.operations,
            "channels": self.channels,
            "elapsed_s": self.elapsed_s,
        }


def mark_interrupted(conn: Connection, at: int) -> int:
    """Commands still ``running`` (cut short by a crash) become ``interrupted``; how many."""
    return conn.execute("UPDATE commands SET status='interrupted', finished_at=? WHERE status='running'", [at]).rowcount


class Commands:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def started(self, *, user: str, source: str, action: str, scene: str | None, target: str | None) -> int:
        """Record a command about to be dispatched, as ``running``; its id."""
        row = [now_ms(), user, source, action, scene, target]

        def job(conn: Connection) -> int:
            cur = conn.execute(
                "INSERT INTO commands (at, user_name, source, action, scene, target, status) VALUES (?,?,?,?,?,?, 'running')",
                row,
            )
            return int(cur.lastrowid or 0)

        return await self._writer.write(job)

    async def finished(
        self, command_id: int, elapsed_s: float, results: Iterable[ResultRow], detail: str | None = None
    ) -> None:
        """The command's outcome and every controller's result, in one transaction."""
        rows = [
            (command_id, r.controller_id, r.status, r.error_kind, r.error, r.operations, r.channels, r.elapsed_s)
            for r in results
        ]
        counts = {s: sum(1 for r in rows if r[2] == s) for s in ("confirmed", "unconfirmed", "failed")}
        finished_at = now_ms()

        def job(conn: Connection) -> None:
            conn.executemany(
                "INSERT INTO command_results (command_id, controller_id, status, error_kind, error, operations,"
                " channels, elapsed_s) VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )
            conn.execute(
                "UPDATE commands SET status='done', finished_at=?, elapsed_s=?, confirmed=?, unconfirmed=?,"
                " failed=?, detail=? WHERE id=?",
                [finished_at, elapsed_s, counts["confirmed"], counts["unconfirmed"], counts["failed"], detail, command_id],
            )

        await self._writer.write(job)

    async def amend(self, command_id: int, results: Iterable[ResultRow], detail: str | None = None) -> None:
        """Results that came after the command was recorded (a district of the federation that was
        offline, and carried the command out when it returned): they replace those controllers'
        results, and the counts are taken again."""
        rows = [
            (command_id, r.controller_id, r.status, r.error_kind, r.error, r.operations, r.channels, r.elapsed_s)
            for r in results
        ]

        def job(conn: Connection) -> None:
            conn.executemany(
                "INSERT INTO command_results (command_id, controller_id, status, error_kind, error, operations,"
                " channels, elapsed_s) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (command_id, controller_id) DO UPDATE SET"
                " status = excluded.status, error_kind = excluded.error_kind, error = excluded.error,"
                " operations = excluded.operations, channels = excluded.channels, elapsed_s = excluded.elapsed_s",
                rows,
            )
            counts = {
                status: conn.execute(
                    "SELECT COUNT(*) FROM command_results WHERE command_id = ? AND status = ?", [command_id, status]
                ).fetchone()[0]
                for status in ("confirmed", "unconfirmed", "failed")
            }
            conn.execute(
                "UPDATE commands SET confirmed = ?, unconfirmed = ?, failed = ?, detail = COALESCE(?, detail) WHERE id = ?",
                [counts["confirmed"], counts["unconfirmed"], counts["failed"], detail, command_id],
            )

        await self._writer.write(job)

    async def recent(self, limit: int = 50) -> list[CommandRecord]:
        """The latest commands, newest first."""
        rows = await self._readers.query("SELECT * FROM commands ORDER BY id DESC LIMIT ?", [limit])
        return [CommandRecord.from_row(r) for r in rows]

    async def get(self, command_id: int) -> CommandRecord | None:
        rows = await self._readers.query("SELECT * FROM commands WHERE id = ?", [command_id])
        return CommandRecord.from_row(rows[0]) if rows else None

    async def results(self, command_id: int) -> list[ResultRecord]:
        """Every controller's result of a command, by controller id."""
        rows = await self._readers.query(
            "SELECT * FROM command_results WHERE command_id = ? ORDER BY controller_id", [command_id]
        )
        return [ResultRecord(**r) for r in rows]
