"""The one writer: a thread that owns the write connection, fed by a bounded queue of jobs and a
buffer of observation rows.

* **Batches.** Every job queued when the writer wakes is written in one transaction (one sync to
  disk with ``synchronous=FULL``), each inside its own savepoint: a job that raises is rolled back
  alone and its waiter gets its exception; the other jobs land. Then the buffered observation
  rows, in a transaction of their own, with ``executemany`` :data:`ROWS_PER_CHUNK` records at a
  time (a bad row is found by inserting that chunk one by one). A job queued while rows are being
  written ends their transaction after the chunk under way: a command's record waits for one
  chunk, never for a burst of readings, and never shares the fate of an observation's batch.
* **A failed batch never stops the writer.** When BEGIN or COMMIT fails (a full disk, a locked
  database, an I/O error), or a job or row meets such a failure (SQLite may then have rolled the
  whole transaction back), every job of the batch gets :class:`StoreWriteFailed` naming the cause,
  the health turns unhealthy, and the writer goes on with the next batch. The first batch that
  commits again makes it healthy.
* **Jobs: a bounded queue with backpressure.** :meth:`Writer.write` waits, without blocking the
  event loop, until the queue has room; nothing is refused or lost.
* **Observations** (state changes, readings, link events) come from the engine's synchronous
  listener, which must never block or wait: :meth:`Writer.record` appends a record to a buffer
  that takes no room in the job queue and that the writer drains whole each time it wakes
  (``executemany`` writes well over 100,000 rows a second, so a healthy writer keeps it near
  empty). Records of a batch that failed to land go back to the front of the buffer and are
  written by a later batch: a disk that fills for a while loses none. The buffer is bounded
  (``observation_limit`` records): only when the writer has been unable to commit for long
  enough to fill it are new records dropped, each one counted in the health
  (``observations_dropped``) and the first of an episode logged. Memory is finite and the
  listener cannot wait, so bounding the buffer is the one honest choice; the bound is set far
  above anything a working disk lets build up (half a million records: hours of a district's
  readings and state changes). Retries of records alone are spaced out (doubling to
  :data:`RETRY_MAX_S`); a job is tried at once. A job queued with ``after_rows`` (the store's
  ``flush``) waits until every record buffered before it is written.
* **Commands first.** While a command is being carried out (:meth:`Writer.holding_rows`, the
  daemon's one switch), buffered observation rows wait, so that writing and rolling them up do not
  take the interpreter from the switch; jobs (the command's own record) are written at once. A
  transaction of rows under way ends after its chunk. Rows are written again when the last hold
  ends, or at once if the buffer passes half its bound meanwhile (none is ever dropped for a hold).
* **Observers of rows** (the energy roll-ups, :mod:`lightctl.store.rollups`) see each chunk of
  observation rows that landed, write what those rows imply at the end of the same transaction
  (``stage``, in a savepoint of its own), and are told whether it committed. Roll-ups therefore
  commit with the readings they come from or not at all; an observer's own bug loses its roll-up
  of that transaction (logged), never the rows.
* **Maintenance** (e.g. pruning old readings) runs in small steps, each its own transaction,
  after a batch: a command record never waits behind more than one step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from lightctl.store.errors import StoreError, StoreWriteFailed, is_environment_error
from lightctl.store.health import HealthTracker, StoreHealth
from lightctl.store.sql import Connection

log = logging.getLogger("lightctl.store")

T = TypeVar("T")
Job = Callable[[Connection], Any]

DEFAULT_QUEUE_SIZE = 1000
DEFAULT_OBSERVATION_LIMIT = 500_000
ROWS_PER_CHUNK = 250
"""Observation records per ``executemany``; also how often a burst of them looks for a job."""
ROW_LINGER_S = 0.05
ROWS_PER_BATCH = 5000
"""Observation records are written once this many are buffered or the first has waited
ROW_LINGER_S: under a burst, one transaction (one sync to disk, one upsert per roll-up row
touched) carries thousands of them."""
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
STOP_TIMEOUT_S = 30.0


class RowSink(Protocol):
    """One kind of observation row and how a batch of them is inserted."""

    name: str

    def insert(self, conn: Connection, rows: Sequence[Any]) -> None: ...


class RowObserver(Protocol):
    """Follows the observation rows as they are written (see the module's docstring)."""

    name: str

    def landed(self, sink: RowSink, rows: Sequence[Any]) -> None:
        """Rows of ``sink`` inserted in the transaction under way (not yet committed)."""
        ...

    def stage(self, conn: Connection) -> None:
        """Write what the transaction's rows imply, before it commits."""
        ...

    def committed(self) -> None: ...

    def abandoned(self) -> None:
        """The transaction was rolled back: forget its rows (they will land again)."""
        ...


@dataclass(eq=False)
class Maintenance:
    """Work the writer does in small steps when due: ``step`` returns True if more is left now."""

    name: str
    interval_s: float
    step: Callable[[Connection], bool]
    due: float = field(default=0.0)


@dataclass(frozen=True, slots=True, eq=False)
class _Queued:
    job: Job
    future: Future[Any]
    loop: asyncio.AbstractEventLoop
    after_rows: bool


class Writer:
    def __init__(
        self,
        label: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        observation_limit: int = DEFAULT_OBSERVATION_LIMIT,
    ) -> None:
        if queue_size < 1 or observation_limit < 1:
            raise ValueError("the store's queue and observation buffer need room for at least one entry")
        self.label = label
        self.health = HealthTracker(label)
        self.queue_size = queue_size
        self.observation_limit = observation_limit
        self.maintenance: list[Maintenance] = []
        self.observers: list[RowObserver] = []
        self._cond = threading.Condition(threading.Lock())  # never taken twice by one thread
        self._jobs: deque[_Queued] = deque()
        self._rows: dict[RowSink, list[Any]] = {}
        self._row_count = 0
        self._room = asyncio.Semaphore(queue_size)
        self._waiting_for_room = 0
        self._retry_at = 0.0
        self._first_row_at = 0.0
        self._rows_held = 0
        self._retry_delay = RETRY_FIRST_S
        self._open = False
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, conn: Connection) -> None:
        """Run the writer on ``conn`` (autocommit mode), which it owns until :meth:`stop`."""
        self._open, self._closing = True, False
        self._thread = threading.Thread(target=self._run, args=(conn,), name="store-writer", daemon=True)
        self._thread.start()

    def stop(self) -> bool:
        """Write everything queued (one last attempt if the store is failing), then stop. False
        if the writer did not finish within :data:`STOP_TIMEOUT_S`."""
        with self._cond:
            self._open = False
            self._closing = True
            self._cond.notify()
        if self._thread is None:
            return True
        self._thread.join(timeout=STOP_TIMEOUT_S)
        return not self._thread.is_alive()

    # -- the producers' side -----------------------------------------------------------------

    async def write(self, job: Callable[[Connection], T], *, after_rows: bool = False) -> T:
        """Queue ``job`` (run on the writer's connection inside a transaction) and wait until it is
        committed; its result, its own exception, or :class:`StoreWriteFailed`. Waits for room
        while the queue is full. A waiter that gives up does not withdraw the job: it lands anyway.
        With ``after_rows``, every observation recorded before has been written first (or the job
        fails with the error that stopped them)."""
        if not self._open:
            raise StoreError(f"store {self.label} is closed")
        loop = asyncio.get_running_loop()
        self._waiting_for_room += 1
        try:
            await self._room.acquire()
        finally:
            self._waiting_for_room -= 1
        future: Future[T] = Future()
        with self._cond:
            if not self._open:
                self._room.release()
                raise StoreError(f"store {self.label} is closed")
            self._jobs.append(_Queued(job, future, loop, after_rows))
            self._cond.notify()
        return await asyncio.wrap_future(future)

    def record(self, sink: RowSink, row: Any) -> None:
        """Buffer one observation row; never blocks (see the module's docstring for a full buffer)."""
        with self._cond:
            if not self._open:
                self.health.drop(1, "the store is closed")
                return
            if self._row_count >= self.observation_limit:
                self.health.drop(1, f"the buffer of {self.observation_limit} rows is full: the writer cannot commit")
                return
            rows = self._rows.get(sink)
            if rows is None:
                self._rows[sink] = [row]
            else:
                rows.append(row)
            self._row_count += 1
            if self._row_count == 1:
                self._first_row_at = time.monotonic()
                self._cond.notify()
            elif self._row_count == ROWS_PER_BATCH:
                self._cond.notify()

    @contextlib.contextmanager
    def holding_rows(self) -> Iterator[None]:
        """Observation rows wait while the block runs (see the module's docstring); jobs do not."""
        with self._cond:
            self._rows_held += 1
        try:
            yield
        finally:
            with self._cond:
                self._rows_held -= 1
                self._cond.notify()

    def snapshot(self) -> StoreHealth:
        with self._cond:
            queued, pending = len(self._jobs), self._row_count
        return self.health.snapshot(queued, self._waiting_for_room, pending)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self, conn: Connection) -> None:
        while True:
            with self._cond:
                while not self._ready():
                    self._cond.wait(self._idle_timeout())
                closing = self._closing
                jobs = list(self._jobs)
                self._jobs.clear()
                flush = any(q.after_rows for q in jobs)
                rows: dict[RowSink, list[Any]] = {}
                if closing or flush or time.monotonic() >= self._rows_due():
                    rows, self._rows, self._row_count = self._rows, {}, 0
            self._free_room(jobs)
            try:
                if flush:
                    jobs = self._flush_rows(conn, rows, jobs)
                    rows = {}
                if jobs:
                    self._write_jobs(conn, jobs)
                if rows:
                    self._write_rows(conn, rows, yield_to_jobs=not closing)
                if closing:
                    self._drop_unwritten()
                    return
                self._maintain(conn)
            except Exception as exc:  # a bug here must not leave the writer dead and its waiters hanging
                log.exception("store %s: the writer met an unexpected error and goes on", self.label)
                failure = StoreWriteFailed(f"store {self.label}: the writer failed: {exc!r}", exc)
                for queued in jobs:
                    if not queued.future.done():
                        _settle(queued.future, None, failure)
                if closing:
                    return

    def _ready(self) -> bool:
        now = time.monotonic()
        return (
            bool(self._jobs)
            or self._closing
            or (self._row_count > 0 and now >= self._rows_due())
            or any(m.due <= now for m in self.maintenance)
        )

    def _rows_due(self) -> float:
        """When the buffered rows are written: after a failure's retry delay, and once they are
        :data:`ROWS_PER_BATCH` or the first has waited :data:`ROW_LINGER_S`; not while a command
        holds them, unless the buffer is half full."""
        if self._held():
            return float("inf")
        gathered = self._row_count >= ROWS_PER_BATCH
        return max(self._retry_at, self._first_row_at if gathered else self._first_row_at + ROW_LINGER_S)

    def _held(self) -> bool:
        """Whether a command holds the observation rows (and the buffer has room to wait)."""
        return bool(self._rows_held) and self._row_count < self.observation_limit // 2

    def _idle_timeout(self) -> float | None:
        wakes = [m.due for m in self.maintenance]
        if self._row_count:
            wakes.append(self._rows_due())
        wakes = [w for w in wakes if w != float("inf")]
        return max(0.0, min(wakes) - time.monotonic()) if wakes else None

    def _free_room(self, jobs: list[_Queued]) -> None:
        for queued in jobs:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits for room on it
                queued.loop.call_soon_threadsafe(self._room.release)

    def _transaction(self, conn: Connection, body: Callable[[], StoreWriteFailed | None]) -> StoreWriteFailed | None:
        """BEGIN, ``body``, COMMIT; the store's failure at any point (rolled back), or None."""
        failure: StoreWriteFailed | None = None
        if conn.in_transaction:  # a job committed or began on its own: start clean
            log.error("store %s: a transaction was left open; rolled back", self.label)
            self._rollback(conn)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:  # whatever the database raises there, the batch did not begin
            failure = StoreWriteFailed(f"store {self.label}: BEGIN failed: {exc}", exc)
            self.health.failed(str(failure))
            return failure
        try:
            failure = body()
        except Exception as exc:  # a savepoint or a release met the store's own failure
            failure = StoreWriteFailed(f"store {self.label}: the batch failed: {exc}", exc)
        if failure is None:
            try:
                conn.execute("COMMIT")
            except Exception as exc:
                failure = StoreWriteFailed(f"store {self.label}: COMMIT failed: {exc}", exc)
        if failure is not None:
            self._rollback(conn)
            self.health.failed(str(failure))
        else:
            self.health.succeeded()
        return failure

    def _write_jobs(self, conn: Connection, jobs: list[_Queued]) -> None:
        """The jobs in one transaction, each in its own savepoint, then their waiters told. A job's
        own error is its waiter's; an error of the store (disk full, I/O) fails the whole batch."""
        outcomes: list[tuple[_Queued, Any, BaseException | None]] = []

        def body() -> StoreWriteFailed | None:
            for number, queued in enumerate(jobs):
                savepoint = f"job{number}"
                conn.execute(f"SAVEPOINT {savepoint}")
                try:
                    result = queued.job(conn)
                except Exception as exc:
                    if is_environment_error(exc):
                        return StoreWriteFailed(f"store {self.label}: a write failed: {exc}", exc)
                    if not self._undo(conn, savepoint):
                        return StoreWriteFailed(f"store {self.label}: the transaction was lost after: {exc}", exc)
                    log.debug("store %s: a job failed and was rolled back alone: %r", self.label, exc)
                    outcomes.append((queued, None, exc))
                else:
                    conn.execute(f"RELEASE {savepoint}")
                    outcomes.append((queued, result, None))
            return None

        failure = self._transaction(conn, body)
        if failure is not None:
            done = {id(q) for q, _, _ in outcomes}
            outcomes = [(q, None, error if error is not None else failure) for q, _, error in outcomes]
            outcomes += [(q, None, failure) for q in jobs if id(q) not in done]
        for queued, result, error in outcomes:
            _settle(queued.future, result, error)

    def _flush_rows(self, conn: Connection, rows: dict[RowSink, list[Any]], jobs: list[_Queued]) -> list[_Queued]:
        """Every buffered row before the jobs that asked for it; those jobs fail if the rows did."""
        failure = self._write_rows(conn, rows, yield_to_jobs=False) if rows else None
        if failure is None:
            return jobs
        for queued in jobs:
            if queued.after_rows:
                _settle(queued.future, None, failure)
        return [q for q in jobs if not q.after_rows]

    def _write_rows(
        self, conn: Connection, rows: dict[RowSink, list[Any]], *, yield_to_jobs: bool
    ) -> StoreWriteFailed | None:
        """Observation rows in one transaction, :data:`ROWS_PER_CHUNK` at a time with
        ``executemany``. With ``yield_to_jobs``, a job queued meanwhile ends the transaction after
        the chunk under way (the rest go back to the buffer's front): a command's record waits
        for one chunk, never for a whole burst of readings."""
        untried: dict[RowSink, list[Any]] = {}

        def body() -> StoreWriteFailed | None:
            items = list(rows.items())
            for index, (sink, batch) in enumerate(items):
                for start in range(0, len(batch), ROWS_PER_CHUNK):
                    if yield_to_jobs and (index or start) and (self._jobs or self._held()):
                        untried[sink] = batch[start:]
                        untried.update(items[index + 1 :])
                        return self._stage(conn)
                    chunk = batch[start : start + ROWS_PER_CHUNK]
                    conn.execute("SAVEPOINT rows")
                    try:
                        sink.insert(conn, chunk)
                    except Exception as exc:
                        if is_environment_error(exc) or not self._undo(conn, "rows"):
                            return StoreWriteFailed(f"store {self.label}: writing {sink.name} failed: {exc}", exc)
                        self._insert_one_by_one(conn, sink, chunk)
                    else:
                        conn.execute("RELEASE rows")
                        for observer in self.observers:
                            observer.landed(sink, chunk)
            return self._stage(conn)

        failure = self._transaction(conn, body)
        for observer in self.observers:
            if failure is None:
                observer.committed()
            else:
                observer.abandoned()
        if failure is not None:
            self._put_back(rows, failed=True)
        else:
            self._retry_delay = RETRY_FIRST_S
            self._put_back(untried, failed=False)
        return failure

    def _stage(self, conn: Connection) -> StoreWriteFailed | None:
        """Each observer writes what the transaction's rows imply, in a savepoint of its own: the
        store's failure fails the batch; an observer's bug costs that observer this transaction."""
        for observer in self.observers:
            conn.execute("SAVEPOINT observer")
            try:
                observer.stage(conn)
            except Exception as exc:
                if is_environment_error(exc) or not self._undo(conn, "observer"):
                    return StoreWriteFailed(f"store {self.label}: {observer.name} failed: {exc}", exc)
                log.exception("store %s: %s failed; the rows of this batch are written without it", self.label, observer.name)
                observer.abandoned()
            else:
                conn.execute("RELEASE observer")
        return None

    def _insert_one_by_one(self, conn: Connection, sink: RowSink, batch: list[Any]) -> None:
        """A bad row among many: find it, keep the others. Raises an error of the store itself."""
        rejected = 0
        for row in batch:
            conn.execute("SAVEPOINT one_row")
            try:
                sink.insert(conn, [row])
            except Exception as exc:
                if is_environment_error(exc) or not self._undo(conn, "one_row"):
                    raise
                if rejected == 0:
                    log.error("store %s: a %s row was refused and is not recorded: %s (%r)", self.label, sink.name, exc, row)
                rejected += 1
            else:
                conn.execute("RELEASE one_row")
                for observer in self.observers:
                    observer.landed(sink, [row])
        self.health.reject(rejected)

    @staticmethod
    def _undo(conn: Connection, savepoint: str) -> bool:
        """Roll back to ``savepoint``; False if the transaction itself is gone."""
        if not conn.in_transaction:
            return False
        try:
            conn.execute(f"ROLLBACK TO {savepoint}")
            conn.execute(f"RELEASE {savepoint}")
        except Exception:
            return False
        return True

    @staticmethod
    def _rollback(conn: Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except Exception:
                log.exception("store: ROLLBACK after a failed batch failed too")

    def _put_back(self, rows: dict[RowSink, list[Any]], *, failed: bool) -> None:
        """Rows not written, in front of those that came since, for a later batch; after a
        failure, that batch waits (doubling delays) unless a job comes first."""
        if not rows:
            return
        with self._cond:
            room = self.observation_limit - self._row_count
            dropped = 0
            for sink, batch in rows.items():
                kept = batch[: max(0, room)]
                room -= len(kept)
                dropped += len(batch) - len(kept)
                self._rows[sink] = kept + self._rows.get(sink, [])
                self._row_count += len(kept)
            self._first_row_at = 0.0  # waiting already: written with the next batch
            if failed:
                self._retry_at = time.monotonic() + self._retry_delay
                self._retry_delay = min(RETRY_MAX_S, self._retry_delay * 2)
        if dropped:
            self.health.drop(dropped, f"the buffer of {self.observation_limit} rows is full: the writer cannot commit")

    def _drop_unwritten(self) -> None:
        with self._cond:
            left, self._rows, self._row_count = self._row_count, {}, 0
        if left:
            self.health.drop(left, "the store closed while they could not be written")

    def _maintain(self, conn: Connection) -> None:
        """One step of the first due maintenance, in its own transaction."""
        now = time.monotonic()
        task = next((m for m in self.maintenance if m.due <= now), None)
        if task is None:
            return
        more = False
        try:
            conn.execute("BEGIN IMMEDIATE")
            more = task.step(conn)
            conn.execute("COMMIT")  # (a pruning step that lands says nothing of whether inserts would)
        except Exception as exc:
            self._rollback(conn)
            more = False
            if is_environment_error(exc):
                self.health.failed(f"store {self.label}: {task.name} failed: {exc}")
            else:
                log.exception("store %s: %s failed; next try in %.0f s", self.label, task.name, task.interval_s)
        task.due = now if more else now + task.interval_s


def _settle(future: Future[Any], result: Any, error: BaseException | None) -> None:
    # The waiter may have given up (its task was cancelled): the write stands anyway.
    if future.running() or not future.set_running_or_notify_cancel():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
