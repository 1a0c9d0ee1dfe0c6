"""The federation's records (migration 0040; the protocol is in :mod:`lightctl.federation`).

District side: the **outbox** of events for the city, in order, kept until the city
acknowledges them, so that nothing said while the broker or the city was unreachable is lost and
nothing is sent as new twice; the **inbox** of the city's requests, so that a request seen again
(resent after a broker restart) is never carried out twice.

City side: each district's events **received** once each and in the district's order (an event
whose id does not follow the last one recorded is not recorded: the district sends it again),
the **requests** the city sent, and the **deliveries** it holds for districts that were offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lightctl.model.times import now_ms
from lightctl.store.readers import ReaderPool
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer

ACKNOWLEDGED = "acknowledged"
RECEIVED = "received/"

_SET_MARK = (
    "INSERT INTO federation_marks (name, value, at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
    " value = CASE WHEN excluded.value > federation_marks.value THEN excluded.value ELSE federation_marks.value END,"
    " at = excluded.at"
)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event of a district for the city. ``id`` orders a district's events."""

    id: int
    at: int
    kind: str
    controller_id: str | None
    body: str


@dataclass(frozen=True, slots=True)
class InboxEntry:
    request_id: str
    action: str
    status: str
    layer_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Delivery:
    request_id: str
    command_id: int
    action: str
    body: str


Taker = Callable[[Connection, str, "OutboxEvent"], str]
"""What the city writes of a district's event in the transaction that records it (see :meth:`FederationRecords.receive`)."""


def _mark(conn: Connection, name: str) -> int:
    row = conn.execute("SELECT value FROM federation_marks WHERE name = ?", [name]).fetchone()
    return 0 if row is None else int(row[0] if not isinstance(row, dict) else row["value"])


def _ids(text: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",")) if text else ()


def outbox_insert(
    conn: Connection, events: Iterable[tuple[int, str, str | None, str]], marks: Mapping[str, int] | None = None
) -> list[OutboxEvent]:
    """:meth:`FederationRecords.outbox_add` inside a writer's job that does more in the same
    transaction (a district's roll-ups: :mod:`lightctl.federation.rollups`)."""
    at = now_ms()
    for name, value in (marks or {}).items():
        conn.execute(_SET_MARK, [name, value, at])
    added = []
    for event_at, kind, controller_id, body in events:
        cur = conn.execute(
            "INSERT INTO federation_outbox (at, kind, controller_id, body) VALUES (?,?,?,?)", [event_at, kind, controller_id, body]
        )
        added.append(OutboxEvent(int(cur.lastrowid or 0), event_at, kind, controller_id, body))
    return added


class FederationRecords:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    # -- district: the outbox ----------------------------------------------------------------

    async def outbox_add(
        self, events: Sequence[tuple[int, str, str | None, str]], marks: Mapping[str, int] | None = None
    ) -> list[OutboxEvent]:
        """Keep events (at, kind, controller, body) in this order, in one transaction (with
        ``marks`` moved forward, e.g. how far a district has sent its roll-ups); them with their ids."""
        rows = list(events)
        moved = dict(marks or {})
        return await self._writer.write(lambda conn: outbox_insert(conn, rows, moved))

    async def outbox_after(self, after_id: int, limit: int = 500) -> list[OutboxEvent]:
        """Events after ``after_id``, oldest first."""
        rows = await self._readers.query(
            "SELECT id, at, kind, controller_id, body FROM federation_outbox WHERE id > ? ORDER BY id LIMIT ?",
            [after_id, limit],
        )
        return [OutboxEvent(r["id"], r["at"], r["kind"], r["controller_id"], r["body"]) for r in rows]

    async def mark(self, name: str) -> int:
        """A progress mark (0 when never set)."""
        return await self._readers.run(lambda conn: _mark(conn, name))

    async def acknowledged(self) -> int:
        """The last outbox id the city confirmed (0: none yet)."""
        return await self._readers.run(lambda conn: _mark(conn, ACKNOWLEDGED))

    async def acknowledge(self, up_to: int) -> None:
        """The city has every event up to ``up_to`` (a mark never goes back)."""
        at = now_ms()
        await self._writer.write(lambda conn: conn.execute(_SET_MARK, [ACKNOWLEDGED, up_to, at]))

    async def outbox_counts(self) -> tuple[int, int]:
        """(events not yet acknowledged, the last id)."""

        def read(conn: Connection) -> tuple[int, int]:
            acknowledged = _mark(conn, ACKNOWLEDGED)
            row = conn.execute("SELECT COUNT(*) AS n, MAX(id) AS last FROM federation_outbox WHERE id > ?", [acknowledged]).fetchone()
            return int(row["n"]), int(row["last"] or acknowledged)

        return await self._readers.run(read)

    async def next_birth_sequence(self) -> int:
        """The next Sparkplug bdSeq (0-255, one per connection to the broker), kept across restarts."""
        at = now_ms()

        def job(conn: Connection) -> int:
            row = conn.execute("SELECT value FROM federation_marks WHERE name = 'bdseq'").fetchone()
            value = 0 if row is None else (int(row[0]) + 1) % 256
            conn.execute(
                "INSERT INTO federation_marks (name, value, at) VALUES ('bdseq', ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value, at = excluded.at",
                [value, at],
            )
            return value

        return await self._writer.write(job)

    # -- district: the inbox -----------------------------------------------------------------

    async def inbox_claim(self, request_id: str, action: str, body: str) -> InboxEntry | None:
        """Take a request to carry it out: None when it is new (now ``running``), else what was
        recorded of it the first time."""
        at = now_ms()

        def job(conn: Connection) -> InboxEntry | None:
            row = conn.execute(
                "SELECT action, status, layer_ids FROM federation_inbox WHERE request_id = ?", [request_id]
            ).fetchone()
            if row is not None:
                return InboxEntry(request_id, row[0], row[1], _ids(row[2]))
            conn.execute(
                "INSERT INTO federation_inbox (request_id, received_at, action, body, status) VALUES (?,?,?,?, 'running')",
                [request_id, at, action, body],
            )
            return None

        return await self._writer.write(job)

    async def answer(
        self, request_id: str, status: str, layer_ids: Iterable[int], event: tuple[int, str, str | None, str]
    ) -> OutboxEvent:
        """A request's outcome in the inbox and its answer into the outbox, in one transaction."""
        ids = ",".join(str(i) for i in layer_ids) or None
        at, kind, controller_id, body = event

        def job(conn: Connection) -> OutboxEvent:
            conn.execute(
                "UPDATE federation_inbox SET status = ?, finished_at = ?, layer_ids = ? WHERE request_id = ?",
                [status, at, ids, request_id],
            )
            cur = conn.execute(
                "INSERT INTO federation_outbox (at, kind, controller_id, body) VALUES (?,?,?,?)", [at, kind, controller_id, body]
            )
            return OutboxEvent(int(cur.lastrowid or 0), at, kind, controller_id, body)

        return await self._writer.write(job)

    async def inbox_layers(self, request_ids: Iterable[str]) -> dict[str, tuple[int, ...]]:
        """The layers each of these requests set here (requests never seen are left out)."""
        wanted = list(request_ids)
        if not wanted:
            return {}
        rows = await self._readers.query(
            f"SELECT request_id, layer_ids FROM federation_inbox WHERE request_id IN ({','.join('?' * len(wanted))})",
            wanted,
        )
        return {r["request_id"]: _ids(r["layer_ids"]) for r in rows}

    async def inbox_requests_by_layer(self) -> dict[int, str]:
        """Which city request set each layer set here by the city."""
        rows = await self._readers.query("SELECT request_id, layer_ids FROM federation_inbox WHERE layer_ids IS NOT NULL")
        return {layer: r["request_id"] for r in rows for layer in _ids(r["layer_ids"])}

    # -- city: what the districts sent -------------------------------------------------------

    async def received(self) -> dict[str, int]:
        """Per district, the last id of its outbox recorded here."""
        rows = await self._readers.query("SELECT name, value FROM federation_marks WHERE name LIKE 'received/%'")
        return {r["name"].removeprefix(RECEIVED): int(r["value"]) for r in rows}

    async def receive(
        self, district: str, events: Sequence[OutboxEvent], take: Taker | None = None
    ) -> tuple[list[OutboxEvent], int]:
        """Record a district's events that follow the last one recorded, in order, once each, in
        one transaction. Returns those recorded now and the district's last recorded id: an event
        at or before it is a copy (dropped), one after a gap waits for the district to send the
        missing ones first. ``take`` writes what an event carries into the city's own tables in the
        same transaction, and returns the body to record of it (a shorter one for bulky data)."""
        received_at = now_ms()
        mark = RECEIVED + district

        def job(conn: Connection) -> tuple[list[OutboxEvent], int]:
            last = _mark(conn, mark)
            taken = []
            for event in sorted(events, key=lambda e: e.id):
                if event.id != last + 1:
                    continue
                body = event.body if take is None else take(conn, district, event)
                conn.execute(
                    "INSERT INTO federation_events (district, id, at, received_at, kind, controller_id, body)"
                    " VALUES (?,?,?,?,?,?,?)",
                    [district, event.id, event.at, received_at, event.kind, event.controller_id, body],
                )
                taken.append(event)
                last = event.id
            if taken:
                conn.execute(_SET_MARK, [mark, last, received_at])
            return taken, last

        return await self._writer.write(job)

    async def receive_from(self, district: str, floor: int) -> None:
        """The district's events up to ``floor`` were acknowledged by this city before and are
        not here (its records were restored from an older backup): take the district's word."""
        at = now_ms()
        await self._writer.write(lambda conn: conn.execute(_SET_MARK, [RECEIVED + district, floor, at]))

    async def events(self, *, district: str | None = None, kind: str | None = None, limit: int = 100) -> list[dict[str, object]]:
        """The latest events received, newest first (``at`` in UTC ms)."""
        where, params = [], []
        if district is not None:
            where.append("district = ?")
            params.append(district)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return await self._readers.query(
            f"SELECT district, id, at, received_at, kind, controller_id, body FROM federation_events{clause}"
            " ORDER BY at DESC, district, id DESC LIMIT ?",
            [*params, limit],
        )

    async def bodies(self, kinds: Sequence[str]) -> list[tuple[str, str, str]]:
        """(district, kind, body) of every event of ``kinds``, in the order each district sent them
        (the city's last view of each fault and work order is the last of these)."""
        marks = ",".join("?" * len(kinds))
        rows = await self._readers.query(
            f"SELECT district, kind, body FROM federation_events WHERE kind IN ({marks}) ORDER BY district, id", list(kinds)
        )
        return [(str(r["district"]), str(r["kind"]), str(r["body"])) for r in rows]

    # -- city: requests and deliveries -------------------------------------------------------

    async def request_sent(
        self, request_id: str, command_id: int, action: str, body: str, *, layer_id: int | None, held_for: Iterable[str]
    ) -> None:
        """Record a request the city sends, and a delivery for each district that is offline."""
        at = now_ms()
        offline = list(held_for)

        def job(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO federation_requests (request_id, command_id, layer_id, action, body, created_at)"
                " VALUES (?,?,?,?,?,?)",
                [request_id, command_id, layer_id, action, body, at],
            )
            conn.executemany(
                "INSERT INTO federation_deliveries (request_id, district, created_at) VALUES (?,?,?)",
                [(request_id, district, at) for district in offline],
            )

        await self._writer.write(job)

    async def held(self, request_id: str, district: str) -> None:
        """A district went offline before answering: deliver the request when it returns."""
        at = now_ms()
        await self._writer.write(
            lambda conn: conn.execute(
                "INSERT INTO federation_deliveries (request_id, district, created_at) VALUES (?,?,?)"
                " ON CONFLICT (request_id, district) DO NOTHING",
                [request_id, district, at],
            )
        )

    async def deliveries(self, district: str) -> list[Delivery]:
        """Requests held for a district, oldest first."""
        rows = await self._readers.query(
            "SELECT r.request_id, r.command_id, r.action, r.body FROM federation_deliveries d"
            " JOIN federation_requests r ON r.request_id = d.request_id"
            " WHERE d.district = ? AND d.answered_at IS NULL ORDER BY r.created_at, r.request_id",
            [district],
        )
        return [Delivery(r["request_id"], r["command_id"], r["action"], r["body"]) for r in rows]

    async def answered(self, request_id: str, district: str) -> None:
        at = now_ms()
        await self._writer.write(
            lambda conn: conn.execute(
                "UPDATE federation_deliveries SET answered_at = ? WHERE request_id = ? AND district = ? AND answered_at IS NULL",
                [at, request_id, district],
            )
        )

    async def requests_of_layers(self, layer_ids: Iterable[int]) -> dict[int, str]:
        """The request that set each of these city layers."""
        wanted = list(layer_ids)
        if not wanted:
            return {}
        rows = await self._readers.query(
            f"SELECT layer_id, request_id FROM federation_requests WHERE layer_id IN ({','.join('?' * len(wanted))})",
            wanted,
        )
        return {int(r["layer_id"]): r["request_id"] for r in rows}

    async def request(self, request_id: str) -> Delivery | None:
        rows = await self._readers.query(
            "SELECT request_id, command_id, action, body FROM federation_requests WHERE request_id = ?", [request_id]
        )
        return Delivery(rows[0]["request_id"], rows[0]["command_id"], rows[0]["action"], rows[0]["body"]) if rows else None


def prune_outbox(conn: Connection, before_ms: int, limit: int = 2000) -> bool:
    """Delete acknowledged outbox events older than ``before_ms``, ``limit`` at a time; True if
    more may be left."""
    acknowledged = _mark(conn, ACKNOWLEDGED)
    cur = conn.execute(
        "DELETE FROM federation_outbox WHERE id IN (SELECT id FROM federation_outbox WHERE id <= ? AND at < ? ORDER BY id LIMIT ?)",
        [acknowledged, before_ms, limit],
    )
    return cur.rowcount == limit
