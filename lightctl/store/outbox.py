"""The notification outbox: deliveries waiting to go, their attempts, and what became of them.

A delivery is enqueued (``enqueue``) inside the same writer job as the change it tells of, so
that a change recorded is a notification owed, through any restart. The notifier takes the due
ones (``due``), and records each attempt with its HTTP status or error (``attempted``): delivered,
retried later, or given up after the configured time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lightctl.store.readers import ReaderPool
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer

PENDING, DELIVERED, ABANDONED = "pending", "delivered", "abandoned"


@dataclass(frozen=True, slots=True)
class Notification:
    webhook_id: str
    event: str
    body: str
    """The JSON exactly as it is signed and sent."""


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: str
    event: str
    body: str
    created_at: int
    attempts: int


@dataclass(frozen=True, slots=True)
class Attempt:
    at: int
    status: int | None
    error: str | None
    elapsed_s: float


def enqueue(conn: Connection, notifications: Iterable[Notification], now: int) -> None:
    conn.executemany(
        "INSERT INTO outbox (webhook_id, event, body, created_at, next_attempt_at, attempts, state)"
        " VALUES (?, ?, ?, ?, ?, 0, ?)",
        [(n.webhook_id, n.event, n.body, now, now, PENDING) for n in notifications],
    )


class Outbox:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def due(self, now: int, limit: int = 100) -> list[Delivery]:
        rows = await self._readers.query(
            "SELECT id, webhook_id, event, body, created_at, attempts FROM outbox"
            " WHERE state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            [PENDING, now, limit],
        )
        return [Delivery(r["id"], r["webhook_id"], r["event"], r["body"], r["created_at"], r["attempts"]) for r in rows]

    async def next_due(self) -> int | None:
        rows = await self._readers.query("SELECT MIN(next_attempt_at) AS at FROM outbox WHERE state = ?", [PENDING])
        at = rows[0]["at"] if rows else None
        return None if at is None else int(at)

    async def attempted(self, delivery_id: int, attempt: Attempt, *, delivered: bool, retry_at: int | None) -> None:
        """Record one attempt; then the row is delivered, due again at ``retry_at``, or (neither)
        given up."""
        state = DELIVERED if delivered else PENDING if retry_at is not None else ABANDONED

        def job(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO outbox_attempts (outbox_id, at, status, error, elapsed_s) VALUES (?,?,?,?,?)",
                [delivery_id, attempt.at, attempt.status, attempt.error, attempt.elapsed_s],
            )
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, state = ?, next_attempt_at = ?, delivered_at = ?,"
                " last_error = ? WHERE id = ?",
                [state, retry_at if retry_at is not None else attempt.at, attempt.at if delivered else None,
                 attempt.error, delivery_id],
            )

        await self._writer.write(job)

    async def attempts(self, delivery_id: int) -> list[Attempt]:
        rows = await self._readers.query(
            "SELECT at, status, error, elapsed_s FROM outbox_attempts WHERE outbox_id = ? ORDER BY at, id", [delivery_id]
        )
        return [Attempt(r["at"], r["status"], r["error"], r["elapsed_s"]) for r in rows]

    async def summary(self) -> dict[str, int]:
        rows = await self._readers.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        return {r["state"]: int(r["n"]) for r in rows}

    async def rows(self, limit: int = 100) -> list[dict[str, object]]:
        return await self._readers.query(
            "SELECT id, webhook_id, event, created_at, attempts, state, delivered_at, last_error, next_attempt_at"
            " FROM outbox ORDER BY id DESC LIMIT ?",
            [limit],
        )
