"""Light-show runs and every cue's result per controller (the show runner's ``ShowRecords``).
A run still ``running`` or ``holding`` when the store opens was cut short and is marked
``interrupted``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from lightctl.model.times import iso_local, now_ms
from lightctl.store.readers import ReaderPool
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer

CueResult = tuple[int, int, str, str, float | None, str | None]
"""loop, cue, controller, status, sent offset (ms after the beat), error."""


@dataclass(frozen=True, slots=True)
class ShowRunRecord:
    id: int
    show_id: str
    user: str
    started_at: int
    ended_at: int | None
    status: str
    loops_done: int | None
    detail: str | None

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        return {
            "id": self.id,
            "show_id": self.show_id,
            "user": self.user,
            "started_at": iso_local(self.started_at, zone),
            "ended_at": iso_local(self.ended_at, zone),
            "status": self.status,
            "loops_done": self.loops_done,
            "detail": self.detail,
        }


def mark_interrupted(conn: Connection, at: int) -> int:
    return conn.execute(
        "UPDATE show_runs SET status='interrupted', ended_at=? WHERE status IN ('running', 'holding')", [at]
    ).rowcount


class ShowRuns:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def show_started(self, show_id: str, user: str) -> int:
        row = [show_id, user, now_ms()]

        def job(conn: Connection) -> int:
            cur = conn.execute(
                "INSERT INTO show_runs (show_id, user_name, started_at, status) VALUES (?,?,?, 'running')", row
            )
            return int(cur.lastrowid or 0)

        return await self._writer.write(job)

    async def show_finished(
        self, run_id: int, status: str, loops_done: int, cues: Iterable[CueResult], detail: str | None
    ) -> None:
        """The run's outcome with every cue's result per controller, in one transaction. A held
        show is recorded when its last cue is sent and again when it is released."""
        rows = [(run_id, *row) for row in cues]
        ended = now_ms()

        def job(conn: Connection) -> None:
            conn.executemany(
                "INSERT INTO show_cue_results (run_id, loop, cue, controller_id, status, sent_offset_ms, error)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id, loop, cue, controller_id) DO UPDATE SET"
                " status = excluded.status, sent_offset_ms = excluded.sent_offset_ms, error = excluded.error",
                rows,
            )
            conn.execute(
                "UPDATE show_runs SET status=?, ended_at=?, loops_done=?, detail=? WHERE id=?",
                [status, ended, loops_done, detail, run_id],
            )

        await self._writer.write(job)

    async def recent(self, limit: int = 20) -> list[ShowRunRecord]:
        rows = await self._readers.query("SELECT * FROM show_runs ORDER BY id DESC LIMIT ?", [limit])
        return [
            ShowRunRecord(r["id"], r["show_id"], r["user_name"], r["started_at"], r["ended_at"], r["status"],
                          r["loops_done"], r["detail"])
            for r in rows
        ]
