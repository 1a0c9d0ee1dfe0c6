"""Records: SQLite (WAL) through sqlite-utils, one writer.

* One writer thread owns the write connection and is fed by a queue, so no request waits on the
  disk. Jobs queued together share one transaction (one sync to disk), each inside its own
  savepoint: a job lands whole or not at all, and a failing job never takes another with it.
* Numbered migrations (``PRAGMA user_version``) and an integrity check at open.
* ``synchronous=FULL``: a committed record survives the daemon being killed at any moment, and the
  power failing too.
* A command is recorded twice: a ``running`` row before it is dispatched (who pressed what is never
  lost) and, in one transaction, its outcome with every controller's result. A command found still
  ``running`` at start was cut short by a crash and is marked ``interrupted``.
* Times are stored as UTC ISO 8601 strings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

log = logging.getLogger("lightctl.store")

MIGRATIONS: tuple[str, ...] = (
    # 1: audit, observations, operator layers
    """
    CREATE TABLE commands (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        user TEXT NOT NULL,
        source TEXT NOT NULL,
        action TEXT NOT NULL,
        scene TEXT,
        target TEXT,
        status TEXT NOT NULL,
        finished_at TEXT,
        elapsed_s REAL,
        confirmed INTEGER,
        unconfirmed INTEGER,
        failed INTEGER,
        detail TEXT
    );
    CREATE INDEX commands_at ON commands(at);
    CREATE TABLE command_results (
        command_id INTEGER NOT NULL REFERENCES commands(id),
        controller_id TEXT NOT NULL,
        status TEXT NOT NULL,
        error_kind TEXT,
        error TEXT,
        operations INTEGER,
        channels INTEGER,
        elapsed_s REAL,
        PRIMARY KEY (command_id, controller_id)
    );
    CREATE TABLE state_changes (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        controller_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        is_on INTEGER,
        level REAL,
        power_w REAL,
        faults TEXT
    );
    CREATE INDEX state_changes_ctrl ON state_changes(controller_id, channel_id, at);
    CREATE TABLE readings (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        controller_id TEXT NOT NULL,
        power_w REAL,
        energy_kwh REAL,
        faults TEXT,
        measurements TEXT
    );
    CREATE INDEX readings_ctrl ON readings(controller_id, at);
    CREATE TABLE link_events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        controller_id TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT
    );
    CREATE TABLE overrides (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        user TEXT NOT NULL,
        kind TEXT NOT NULL,
        scene TEXT NOT NULL,
        target TEXT NOT NULL,
        until TEXT,
        cleared_at TEXT,
        cleared_by TEXT
    );
    """,
    # 2: curtailment (a cap, and what it shed) and light-show runs with every cue's result
    """
    ALTER TABLE overrides ADD COLUMN cap REAL;
    CREATE TABLE curtail_shed (
        override_id INTEGER NOT NULL REFERENCES overrides(id),
        controller_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        luminaires INTEGER NOT NULL,
        level_before REAL NOT NULL,
        level_after REAL NOT NULL,
        shed_w REAL NOT NULL,
        PRIMARY KEY (override_id, controller_id, channel_id)
    );
    CREATE TABLE show_runs (
        id INTEGER PRIMARY KEY,
        show_id TEXT NOT NULL,
        user TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL,
        loops_done INTEGER,
        detail TEXT
    );
    CREATE TABLE show_cue_results (
        run_id INTEGER NOT NULL REFERENCES show_runs(id),
        loop INTEGER NOT NULL,
        cue INTEGER NOT NULL,
        controller_id TEXT NOT NULL,
        status TEXT NOT NULL,
        sent_offset_ms REAL,
        error TEXT,
        PRIMARY KEY (run_id, loop, cue, controller_id)
    );
    """,
)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class StoreError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class ResultRow:
    controller_id: str
    status: str
    error_kind: str | None
    error: str | None
    operations: int
    channels: int
    elapsed_s: float


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed), check integrity, set WAL, migrate."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    ok = conn.execute("PRAGMA quick_check").fetchone()[0]
    if ok != "ok":
        raise StoreError(f"{path}: integrity check failed: {ok}")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(f"{path}: schema version {version} is newer than this lightctl ({len(MIGRATIONS)})")
    for number in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("%s: schema migrated to version %d", path, number + 1)
    return sqlite_utils.Database(conn)


Job = Callable[[sqlite_utils.Database], Any]


class Store:
    """The daemon's records. Writes go through one writer thread; reads use their own connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._jobs: list[tuple[Job, Future[Any] | None]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._write_db: sqlite_utils.Database | None = None
        self._read_db: sqlite_utils.Database | None = None
        self._read_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        self._write_db = open_database(self.path)
        self._read_db = sqlite_utils.Database(
            sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        )
        interrupted = self._write_db.execute(
            "UPDATE commands SET status='interrupted', finished_at=? WHERE status='running'", [utc_now()]
        ).rowcount
        self._write_db.execute(
            "UPDATE show_runs SET status='interrupted', ended_at=? WHERE status IN ('running', 'holding')", [utc_now()]
        )
        if interrupted:
            log.warning("%d command(s) were cut short by a previous stop; marked interrupted", interrupted)
        self._thread = threading.Thread(target=self._writer, name="store-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Flush every queued job, then close."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for db in (self._write_db, self._read_db):
            if db is not None:
                db.conn.close()
        self._write_db = self._read_db = None

    # -- the writer --------------------------------------------------------------------------

    def _writer(self) -> None:
        assert self._write_db is not None
        db = self._write_db
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                jobs, self._jobs = self._jobs, []
                closing = self._closing
            done: list[tuple[Future[Any] | None, Any, BaseException | None]] = []
            if jobs:
                db.conn.execute("BEGIN IMMEDIATE")
                for number, (job, future) in enumerate(jobs):
                    db.conn.execute(f"SAVEPOINT job{number}")
                    try:
                        result = job(db)
                    except Exception as exc:
                        db.conn.execute(f"ROLLBACK TO job{number}")
                        log.exception("store: a write failed and was rolled back")
                        done.append((future, None, exc))
                    else:
                        done.append((future, result, None))
                    db.conn.execute(f"RELEASE job{number}")
                db.conn.execute("COMMIT")
            for future, result, error in done:
                # The waiter may have given up (its task was cancelled): the write stands anyway.
                if future is None or not future.set_running_or_notify_cancel():
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)
            if closing:
                return

    def submit(self, job: Job) -> None:
        """Queue a write and do not wait for it."""
        with self._cond:
            if self._closing:
                raise StoreError("store is closed")
            self._jobs.append((job, None))
            self._cond.notify()

    async def write(self, job: Job) -> Any:
        """Queue a write and wait until it is committed."""
        future: Future[Any] = Future()
        with self._cond:
            if self._closing:
                raise StoreError("store is closed")
            self._jobs.append((job, future))
            self._cond.notify()
        return await asyncio.wrap_future(future)

    async def read(self, query: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        assert self._read_db is not None
        db = self._read_db

        def run() -> list[dict[str, Any]]:
            with self._read_lock:
                return list(db.query(query, list(params)))

        return await asyncio.to_thread(run)

    # -- commands ----------------------------------------------------------------------------

    async def command_started(self, *, user: str, source: str, action: str, scene: str | None, target: str | None) -> int:
        def job(db: sqlite_utils.Database) -> int:
            cur = db.conn.execute(
                "INSERT INTO commands (at, user, source, action, scene, target, status) VALUES (?,?,?,?,?,?, 'running')",
                [utc_now(), user, source, action, scene, target],
            )
            return int(cur.lastrowid or 0)

        return int(await self.write(job))

    async def command_finished(
        self, command_id: int, elapsed_s: float, results: Iterable[ResultRow], detail: str | None = None
    ) -> None:
        rows = [
            (command_id, r.controller_id, r.status, r.error_kind, r.error, r.operations, r.channels, r.elapsed_s)
            for r in results
        ]
        counts = {s: sum(1 for r in rows if r[2] == s) for s in ("confirmed", "unconfirmed", "failed")}

        def job(db: sqlite_utils.Database) -> None:
            db.conn.executemany("INSERT INTO command_results VALUES (?,?,?,?,?,?,?,?)", rows)
            db.conn.execute(
                "UPDATE commands SET status='done', finished_at=?, elapsed_s=?, confirmed=?, unconfirmed=?,"
                " failed=?, detail=? WHERE id=?",
                [utc_now(), elapsed_s, counts["confirmed"], counts["unconfirmed"], counts["failed"], detail, command_id],
            )

        await self.write(job)

    async def commands(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self.read("SELECT * FROM commands ORDER BY id DESC LIMIT ?", [limit])

    async def command_results(self, command_id: int) -> list[dict[str, Any]]:
        return await self.read(
            "SELECT * FROM command_results WHERE command_id=? ORDER BY controller_id", [command_id]
        )

    # -- observations ------------------------------------------------------------------------

    def record_state_changes(self, controller_id: str, at: float, changes: Mapping[str, Any]) -> None:
        when = utc_iso(at)
        rows = [
            (
                when,
                controller_id,
                ch,
                None if r.on is None else int(r.on),
                r.level,
                r.power_w,
                ",".join(sorted(r.faults)) or None,
            )
            for ch, r in changes.items()
        ]
        self.submit(
            lambda db: db.conn.executemany(
                "INSERT INTO state_changes (at, controller_id, channel_id, is_on, level, power_w, faults)"
                " VALUES (?,?,?,?,?,?,?)",
                rows,
            )
        )

    def record_reading(
        self,
        controller_id: str,
        at: float,
        power_w: float | None,
        energy_kwh: float | None,
        faults: Iterable[str],
        measurements: Mapping[str, float],
    ) -> None:
        row = [utc_iso(at), controller_id, power_w, energy_kwh, ",".join(sorted(faults)) or None, json.dumps(dict(measurements))]
        self.submit(
            lambda db: db.conn.execute(
                "INSERT INTO readings (at, controller_id, power_w, energy_kwh, faults, measurements) VALUES (?,?,?,?,?,?)",
                row,
            )
        )

    def record_link(self, controller_id: str, state: str, error: str | None) -> None:
        row = [utc_now(), controller_id, state, error]
        self.submit(
            lambda db: db.conn.execute(
                "INSERT INTO link_events (at, controller_id, state, error) VALUES (?,?,?,?)", row
            )
        )

    # -- operator layers ---------------------------------------------------------------------

    async def add_override(
        self,
        *,
        user: str,
        kind: str,
        scene: str,
        target: str,
        until: str | None,
        supersedes: Iterable[int],
        cap: float | None = None,
        shed: Iterable[tuple[str, str, int, float, float, float]] = (),
    ) -> int:
        """Record an override or curtailment; a curtailment also records, per channel, what it
        shed: (controller, channel, luminaires, level before, level after, watts shed)."""
        superseded = list(supersedes)
        shed_rows = list(shed)

        def job(db: sqlite_utils.Database) -> int:
            now = utc_now()
            for oid in superseded:
                db.conn.execute(
                    "UPDATE overrides SET cleared_at=?, cleared_by=? WHERE id=? AND cleared_at IS NULL",
                    [now, f"superseded by {user}", oid],
                )
            cur = db.conn.execute(
                "INSERT INTO overrides (created_at, user, kind, scene, target, until, cap) VALUES (?,?,?,?,?,?,?)",
                [now, user, kind, scene, target, until, cap],
            )
            oid = int(cur.lastrowid or 0)
            db.conn.executemany(
                "INSERT INTO curtail_shed VALUES (?,?,?,?,?,?,?)", [(oid, *row) for row in shed_rows]
            )
            return oid

        return int(await self.write(job))

    async def clear_overrides(self, ids: Iterable[int], by: str) -> None:
        wanted = list(ids)

        def job(db: sqlite_utils.Database) -> None:
            now = utc_now()
            for oid in wanted:
                db.conn.execute(
                    "UPDATE overrides SET cleared_at=?, cleared_by=? WHERE id=? AND cleared_at IS NULL", [now, by, oid]
                )

        await self.write(job)

    # -- light shows -------------------------------------------------------------------------

    async def show_started(self, show_id: str, user: str) -> int:
        def job(db: sqlite_utils.Database) -> int:
            cur = db.conn.execute(
                "INSERT INTO show_runs (show_id, user, started_at, status) VALUES (?,?,?, 'running')",
                [show_id, user, utc_now()],
            )
            return int(cur.lastrowid or 0)

        return int(await self.write(job))

    async def show_finished(
        self,
        run_id: int,
        status: str,
        loops_done: int,
        cues: Iterable[tuple[int, int, str, str, float | None, str | None]],
        detail: str | None,
    ) -> None:
        """The run's outcome with every cue's result per controller, in one transaction. A held
        show is recorded when its last cue is sent and again when it is released."""
        rows = [(run_id, *row) for row in cues]

        def job(db: sqlite_utils.Database) -> None:
            db.conn.executemany("INSERT OR REPLACE INTO show_cue_results VALUES (?,?,?,?,?,?,?)", rows)
            db.conn.execute(
                "UPDATE show_runs SET status=?, ended_at=?, loops_done=?, detail=? WHERE id=?",
                [status, utc_now(), loops_done, detail, run_id],
            )

        await self.write(job)

    async def active_overrides(self) -> list[dict[str, Any]]:
        return await self.read("SELECT * FROM overrides WHERE cleared_at IS NULL ORDER BY id")
