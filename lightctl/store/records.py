"""The daemon's records: one database, a SQLite file (WAL) or PostgreSQL
(:mod:`lightctl.store.backend`), written by one writer thread (:mod:`lightctl.store.writer`), read
through a small pool (:mod:`lightctl.store.readers`), its schema brought up to date by numbered
migration files (:mod:`lightctl.store.migrate`), and one repository per kind of record
(``commands``, ``observations``, ``layers``, ``shows``, ``faults``, ``work_orders``, ``outbox``,
``users``, ``sessions``, ``tokens``, ``audit``, ``energy``, ``inspections``, ``federation``), each
written once for both databases (:mod:`lightctl.store.sql` says what they share). Given the
installation's :class:`~lightctl.store.rollups.RollupModel`, the writer rolls energy up as readings
land (:mod:`lightctl.store.rollups`), and old roll-ups and inspections are pruned as ``retention``
says.

Opening: on SQLite the integrity check (``PRAGMA quick_check``, minutes on a big database) runs
only when the last stop was not clean; every opening is a row of ``store_runs`` that a clean
close completes. A database migrated by a newer lightctl is refused (:class:`StoreTooNew`).
Commands and show runs cut short by the stop before are marked ``interrupted``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from lightctl.model.reports import Retention
from lightctl.model.times import now_ms
from lightctl.store import audit, commands, shows
from lightctl.store.audit import AuditLog
from lightctl.store.backend import Backend, backend_for
from lightctl.store.commands import Commands
from lightctl.store.connection import DEFAULT_BUSY_TIMEOUT_S
from lightctl.store.energy import PRUNE_INTERVAL_S as ROLLUP_PRUNE_INTERVAL_S
from lightctl.store.energy import EnergyRecords, Grain, prune_rollups
from lightctl.store.errors import StoreError
from lightctl.store.faults import Faults
from lightctl.store.federation import FederationRecords
from lightctl.store.health import StoreHealth
from lightctl.store.inspections import Inspections, prune_inspections
from lightctl.store.layers import OperatorLayers
from lightctl.store.migrate import (
    Dialect,
    applied_versions,
    check_not_newer,
    known_migrations,
    migrate,
    table_exists,
)
from lightctl.store.observations import DAY_MS, PRUNE_INTERVAL_S, Observations, prune_readings
from lightctl.store.outbox import Outbox
from lightctl.store.readers import DEFAULT_READERS, ReaderPool, Row
from lightctl.store.rollups import EnergyRollup, RollupModel
from lightctl.store.sessions import Sessions
from lightctl.store.shows import ShowRuns
from lightctl.store.sql import Connection
from lightctl.store.tokens import ApiTokens
from lightctl.store.users import Users
from lightctl.store.workorders import WorkOrders
from lightctl.store.writer import DEFAULT_OBSERVATION_LIMIT, DEFAULT_QUEUE_SIZE, Maintenance, Writer

log = logging.getLogger("lightctl.store")

T = TypeVar("T")


class Store:
    def __init__(
        self,
        path: str | Path,
        *,
        reading_retention_days: int | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        observation_limit: int = DEFAULT_OBSERVATION_LIMIT,
        readers: int = DEFAULT_READERS,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        rollups: RollupModel | None = None,
        retention: Retention | None = None,
    ) -> None:
        """``path``: a SQLite file, or a PostgreSQL URL (``postgresql://user@host:port/db``)."""
        self.path = str(path)
        self.backend: Backend = backend_for(self.path, busy_timeout_s)
        self.label = self.backend.label
        """The database as messages show it (a PostgreSQL URL without its password)."""
        self.busy_timeout_s = busy_timeout_s
        self.writer = Writer(self.label, queue_size=queue_size, observation_limit=observation_limit)
        self.readers = ReaderPool(self.label, self.backend.connect_reader, self.backend.disconnect, size=readers)
        self.commands = Commands(self.writer, self.readers)
        self.observations = Observations(self.writer, self.readers)
        self.layers = OperatorLayers(self.writer, self.readers)
        self.shows = ShowRuns(self.writer, self.readers)
        self.faults = Faults(self.readers)
        self.work_orders = WorkOrders(self.readers)
        self.outbox = Outbox(self.writer, self.readers)
        self.users = Users(self.writer, self.readers)
        self.sessions = Sessions(self.writer, self.readers)
        self.tokens = ApiTokens(self.writer, self.readers)
        self.audit = AuditLog(self.writer, self.readers)
        self.energy = EnergyRecords(self.readers)
        self.inspections = Inspections(self.writer, self.readers)
        self.rollup = (
            EnergyRollup(
                rollups,
                readings=self.observations.readings_sink,
                state_changes=self.observations.state_changes_sink,
                link_events=self.observations.link_events_sink,
            )
            if rollups is not None
            else None
        )
        self.federation = FederationRecords(self.writer, self.readers)
        if reading_retention_days is not None:
            retention_ms = reading_retention_days * DAY_MS
            self.writer.maintenance.append(
                Maintenance("pruning old readings", PRUNE_INTERVAL_S, lambda conn: prune_readings(conn, now_ms() - retention_ms))
            )
        if retention is not None:
            self._prune_reports(retention)
        self.commands_first = True
        """Whether a command holds observation rows while it runs (``holding_observations``)."""
        self.integrity_checked = False
        """Whether the last :meth:`open` checked integrity (the stop before it was not clean)."""
        self._conn: Connection | None = None
        self._run_id: int | None = None

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.backend.kind

    def _prune_reports(self, retention: Retention) -> None:
        for grain, days in ((Grain.HOUR, retention.hour_days), (Grain.DAY, retention.day_days), (Grain.MONTH, retention.month_days)):
            if days is not None:
                self.writer.maintenance.append(
                    Maintenance(f"pruning old {grain.value} roll-ups", ROLLUP_PRUNE_INTERVAL_S, _rollup_pruner(grain, days))
                )
        if retention.inspection_days is not None:
            inspections_ms = retention.inspection_days * DAY_MS
            self.writer.maintenance.append(
                Maintenance(
                    "pruning old inspections", ROLLUP_PRUNE_INTERVAL_S,
                    lambda conn: prune_inspections(conn, now_ms() - inspections_ms),
                )
            )

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open (creating if needed), check integrity after an unclean stop (SQLite), migrate,
        mark what the last stop cut short, and start the writer. Blocking: call it in a thread."""
        self.backend.take()
        try:
            self._open()
        except BaseException:
            self.backend.release()
            self.backend.close()
            raise

    def _open(self) -> None:
        conn = self.backend.connect_writer()
        dialect = self.backend.dialect
        try:
            new = _is_new(conn, dialect)
            if new:
                log.info("store %s: a new database", self.label)
            if self.backend.checks_integrity:
                self.integrity_checked = not new and not _last_stop_clean(conn, dialect)
                if self.integrity_checked:
                    _check_integrity(self.backend, conn)
            migrate(conn, self.label, dialect=dialect)
            if self.rollup is not None:
                self.rollup.load(conn)
            self._run_id = self._begin_run(conn)
        except BaseException:
            self.backend.disconnect(conn)
            raise
        self._conn = conn
        self.readers.open()
        if self.rollup is not None and self.rollup not in self.writer.observers:
            self.writer.observers.append(self.rollup)
        self.writer.start(conn)

    def open_beside(self) -> None:
        """Open the database of a daemon on this machine, which may be running, for a short job
        of the CLI (users, tokens): no integrity check, no migration, no run recorded (the
        daemon's own runs say whether *it* stopped cleanly). A database whose schema is not this
        lightctl's is refused: the daemon migrates it when it starts. Blocking."""
        if self.backend.kind == "sqlite" and not Path(self.path).exists():
            raise StoreError(f"no database at {self.path}: start the daemon (lightctl run) once first")
        conn = self.backend.connect_writer()
        try:
            applied = applied_versions(conn, self.backend.dialect)
            known = known_migrations()
            check_not_newer(applied, known, self.label)
            pending = [m.file for m in known if m.version not in applied]
            if pending:
                raise StoreError(
                    f"{self.path}: the database lacks migration(s) {', '.join(pending)}: start the daemon "
                    "(lightctl run), which brings it up to date, then try again"
                )
        except BaseException:
            self.backend.disconnect(conn)
            raise
        self._conn = conn
        self._run_id = None
        self.readers.open()
        self.writer.start(conn)

    def _begin_run(self, conn: Connection) -> int:
        at = now_ms()
        conn.execute(self.backend.dialect.begin)
        try:
            cut_short = commands.mark_interrupted(conn, at)
            shows_cut_short = shows.mark_interrupted(conn, at)
            requests_cut_short = audit.mark_interrupted(conn, at)
            cur = conn.execute(
                "INSERT INTO store_runs (opened_at, integrity_checked) VALUES (?, ?)", [at, self.integrity_checked]
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if cut_short or shows_cut_short or requests_cut_short:
            log.warning(
                "%d command(s), %d show run(s) and %d request(s) were cut short by the previous stop; marked interrupted",
                cut_short, shows_cut_short, requests_cut_short,
            )
        return int(cur.lastrowid or 0)

    def close(self) -> None:
        """Write everything queued, then record the clean stop and close."""
        conn, self._conn = self._conn, None
        try:
            self._close(conn)
        finally:
            self.backend.release()
            self.backend.close()

    def _close(self, conn: Connection | None) -> None:
        stopped = self.writer.stop()
        self.readers.close()
        if conn is None:
            return
        if not stopped:
            log.error("store %s: the writer did not finish in time; the next start will check integrity", self.label)
            return
        if self._run_id is None:  # opened beside a daemon: its runs are not ours to close
            self.backend.disconnect(conn)
            return
        try:
            conn.execute("UPDATE store_runs SET closed_at=? WHERE id=?", [now_ms(), self._run_id])
            self.backend.closing(conn)
        except Exception as exc:
            log.error("store %s: the clean stop could not be recorded (%s); the next start will check integrity", self.label, exc)
        self.backend.disconnect(conn)

    # -- health and generic access -----------------------------------------------------------

    def health(self) -> StoreHealth:
        return self.writer.snapshot()

    async def write(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` on the writer's connection, in a savepoint of the next batch; see
        :meth:`lightctl.store.writer.Writer.write`."""
        return await self.writer.write(job)

    def holding_observations(self) -> contextlib.AbstractContextManager[None]:
        """While the block runs, observation rows wait in the buffer (a command first: see
        :meth:`lightctl.store.writer.Writer.holding_rows`), unless ``commands_first`` is off."""
        return self.writer.holding_rows() if self.commands_first else contextlib.nullcontext()

    async def flush(self) -> None:
        """Wait until every observation recorded before this call is written (or raise the
        :class:`StoreWriteFailed` that stopped them)."""
        await self.writer.write(lambda conn: None, after_rows=True)

    async def read(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Rows of a query on a read connection of the pool, as dicts."""
        return await self.readers.query(sql, params)

    async def read_with(self, read: Callable[[Connection], T]) -> T:
        """Run ``read`` on a read connection of the pool (rows come as dicts), in its thread."""
        return await self.readers.run(read)


def _is_new(conn: Connection, dialect: Dialect) -> bool:
    """A database without any table: nothing to check, and no stop, clean or not, to speak of."""
    return conn.execute(dialect.any_table).fetchone() is None


def _rollup_pruner(grain: Grain, days: int) -> Callable[[Connection], bool]:
    kept_ms = days * DAY_MS
    return lambda conn: prune_rollups(conn, grain, now_ms() - kept_ms)


def _last_stop_clean(conn: Connection, dialect: Dialect) -> bool:
    """Whether the store was closed cleanly the last time it was opened (False if never recorded)."""
    if not table_exists(conn, "store_runs", dialect):
        return False
    last = conn.execute("SELECT closed_at FROM store_runs ORDER BY id DESC LIMIT 1").fetchone()
    return last is not None and last[0] is not None


def _check_integrity(backend: Backend, conn: Connection) -> None:
    log.info("store %s: the last stop was not clean (or not recorded); checking integrity", backend.label)
    started = time.monotonic()
    found = backend.check_integrity(conn)
    if found != ["ok"]:
        raise StoreError(f"{backend.label}: integrity check failed: {'; '.join(found[:5])}")
    log.info("store %s: integrity ok (%.2f s)", backend.label, time.monotonic() - started)
