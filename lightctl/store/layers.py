"""Operator layers: overrides (a scene held on a selector, hand-backs among them) and
curtailments (a cap on a selector's level, with what each channel shed). The daemon loads the
active ones at start: a restart keeps every layer an operator set."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from lightctl.model.times import iso_local, now_ms, to_ms
from lightctl.store.readers import ReaderPool
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer

Shed = tuple[str, str, int, float, float, float]
"""What a curtailment shed on one channel: controller, channel, luminaires, level before, level
after (percent), watts shed."""


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    id: int
    created_at: int
    user: str
    kind: str
    scene: str
    target: str
    until: int | None
    cap: float | None


@dataclass(frozen=True, slots=True)
class CurtailmentRecord:
    id: int
    created_at: int
    user: str
    target: str
    cap: float | None
    until: int | None
    channels: int
    luminaires: int
    shed_kw: float

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": iso_local(self.created_at, zone),
            "user": self.user,
            "target": self.target,
            "cap": self.cap,
            "until": iso_local(self.until, zone),
            "channels": self.channels,
            "luminaires": self.luminaires,
            "shed_kw": self.shed_kw,
        }


class OperatorLayers:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def add(
        self,
        *,
        user: str,
        kind: str,
        scene: str,
        target: str,
        until: datetime | None,
        supersedes: Iterable[int] = (),
        cap: float | None = None,
        shed: Iterable[Shed] = (),
    ) -> int:
        """Record an override or a curtailment (clearing those it supersedes, in the same
        transaction); a curtailment also records what it shed per channel. Its id."""
        superseded = list(supersedes)
        shed_rows = list(shed)
        until_ms = None if until is None else to_ms(until)
        created = now_ms()

        def job(conn: Connection) -> int:
            conn.executemany(
                "UPDATE overrides SET cleared_at=?, cleared_by=? WHERE id=? AND cleared_at IS NULL",
                [(created, f"superseded by {user}", oid) for oid in superseded],
            )
            cur = conn.execute(
                "INSERT INTO overrides (created_at, user_name, kind, scene, target, until, cap) VALUES (?,?,?,?,?,?,?)",
                [created, user, kind, scene, target, until_ms, cap],
            )
            oid = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO curtail_shed (override_id, controller_id, channel_id, luminaires, level_before,"
                " level_after, shed_w) VALUES (?,?,?,?,?,?,?)",
                [(oid, *row) for row in shed_rows],
            )
            return oid

        return await self._writer.write(job)

    async def clear(self, ids: Iterable[int], by: str) -> None:
        wanted = list(ids)
        cleared = now_ms()

        def job(conn: Connection) -> None:
            conn.executemany(
                "UPDATE overrides SET cleared_at=?, cleared_by=? WHERE id=? AND cleared_at IS NULL",
                [(cleared, by, oid) for oid in wanted],
            )

        await self._writer.write(job)

    async def active(self) -> list[OverrideRecord]:
        """Overrides and curtailments in force (not cleared), oldest first."""
        rows = await self._readers.query(
            "SELECT id, created_at, user_name, kind, scene, target, until, cap FROM overrides"
            " WHERE cleared_at IS NULL ORDER BY id"
        )
        return [
            OverrideRecord(r["id"], r["created_at"], r["user_name"], r["kind"], r["scene"], r["target"], r["until"], r["cap"])
            for r in rows
        ]

    async def active_curtailments(self) -> list[CurtailmentRecord]:
        """Curtailments in force with what they shed, oldest first."""
        rows = await self._readers.query(
            "SELECT o.id, o.created_at, o.user_name, o.target, o.cap, o.until, COUNT(s.channel_id) AS channels,"
            " COALESCE(SUM(s.luminaires), 0) AS luminaires, COALESCE(SUM(s.shed_w), 0) / 1000.0 AS shed_kw"
            " FROM overrides o LEFT JOIN curtail_shed s ON s.override_id = o.id"
            " WHERE o.kind = 'curtail' AND o.cleared_at IS NULL"
            " GROUP BY o.id, o.created_at, o.user_name, o.target, o.cap, o.until ORDER BY o.id"
        )
        return [
            CurtailmentRecord(
                r["id"], r["created_at"], r["user_name"], r["target"], r["cap"], r["until"], r["channels"],
                r["luminaires"], r["shed_kw"],
            )
            for r in rows
        ]
