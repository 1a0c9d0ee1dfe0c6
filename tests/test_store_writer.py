"""The store's writer and readers against real SQLite files: a failed COMMIT or BEGIN fails its
batch with a typed error and the writer goes on; a full disk keeps observations for later; the
queue's backpressure; the observation buffer's bound, counted; readers side by side; pruning."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from lightctl.model.values import ChannelReading, ControllerReading
from lightctl.store import Store, StoreWriteFailed
from lightctl.store.observations import PRUNE_BATCH
from lightctl.store.sql import Connection
from tests.conftest import StoreBackend


@asynccontextmanager
async def opened(path: Path | str, **options: Any) -> AsyncIterator[Store]:
    store = Store(path, **options)
    await asyncio.to_thread(store.open)
    try:
        yield store
    finally:
        await asyncio.to_thread(store.close)


@asynccontextmanager
async def writer_held(store: Store) -> AsyncIterator[None]:
    """The writer busy inside a job until the block ends: what is queued meanwhile forms the next batch."""
    entered, gate = threading.Event(), threading.Event()

    def hold(conn: Connection) -> None:
        entered.set()
        gate.wait(10)

    holding = asyncio.ensure_future(store.write(hold))
    assert await asyncio.to_thread(entered.wait, 10)
    try:
        yield
    finally:
        gate.set()
        await holding


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def reading(at: float, **measurements: float) -> ControllerReading:
    return ControllerReading(at, {}, power_w=1200.0, energy_kwh=5.0, measurements=measurements)


async def count(store: Store, table: str) -> int:
    rows = await store.read(f"SELECT COUNT(*) AS n FROM {table}")
    return int(rows[0]["n"])


async def test_a_failed_commit_fails_its_batch_and_the_writer_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lightctl.store")
    async with opened(tmp_path / "commit.db") as store:

        def deferred_reference(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
            conn.execute("CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")

        await store.write(deferred_reference)
        # A batch of two: a command, and a row that breaks a deferred reference (SQLite checks it at
        # COMMIT, which then fails).
        async with writer_held(store):
            command = asyncio.ensure_future(store.commands.started(user="u", source="t", action="a", scene=None, target="*"))
            broken = asyncio.ensure_future(store.write(lambda c: c.execute("INSERT INTO child VALUES (42)")))
            await eventually(lambda: store.health().queued_writes == 2)
        for waiter in (command, broken):
            with pytest.raises(StoreWriteFailed, match="COMMIT failed: FOREIGN KEY constraint failed") as failed:
                await waiter
            assert isinstance(failed.value.cause, sqlite3.IntegrityError)
        health = store.health()
        assert not health.healthy and health.unhealthy_since is not None and health.failed_batches == 1
        assert health.last_error is not None and "FOREIGN KEY" in health.last_error

        # The writer lives: the next writes land.
        later = await store.commands.started(user="u", source="t", action="b", scene=None, target="*")
        store.observations.record_link("c1", "online", None)
        await store.flush()
        assert [c.id for c in await store.commands.recent()] == [later]
        assert [e["controller_id"] for e in await store.observations.link_events("c1")] == ["c1"]
        assert await count(store, "child") == 0
        health = store.health()
        assert health.healthy and health.unhealthy_since is None and health.last_error is not None
    logged = [r.getMessage() for r in caplog.records]
    assert sum("writes are failing" in m for m in logged) == 1
    assert sum("writes land again after 1 failed batch" in m for m in logged) == 1


async def test_a_locked_database_fails_begin_and_observations_wait_for_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "locked.db"
    async with opened(path, busy_timeout_s=0.1) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            store.observations.record_state_changes("c1", time.time(), {"ch1": ChannelReading(on=True, level=40.0)})
            for attempt in range(2):
                with pytest.raises(StoreWriteFailed, match="BEGIN failed: database is locked"):
                    await store.commands.started(user="u", source="t", action=f"a{attempt}", scene=None, target="*")
            health = store.health()
            assert not health.healthy and health.failed_batches >= 2 and health.observations_pending == 1
        finally:
            other.execute("ROLLBACK")
            other.close()
        # Nothing else is written: the state change is retried by itself and lands.
        await eventually(lambda: store.health().healthy, timeout=5.0)
        await store.flush()
        changes = await store.observations.state_changes("c1")
        assert [(c["channel_id"], c["is_on"], c["level"]) for c in changes] == [("ch1", True, 40.0)]
        assert store.health().observations_dropped == 0
    assert sum("writes are failing" in r.getMessage() for r in caplog.records) == 1


async def test_a_full_disk_keeps_the_observations_until_there_is_room(tmp_path: Path) -> None:
    async with opened(tmp_path / "full.db") as store:
        pages = await store.write(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
        await store.write(lambda c: c.execute(f"PRAGMA max_page_count = {pages}"))  # no page more
        now = time.time()
        for n in range(200):
            store.observations.record_reading(f"c{n}", reading(now, voltage_l1_v=229.5, output_ch1_pct=50.0))
        with pytest.raises(StoreWriteFailed, match="writing readings failed: database or disk is full") as failed:
            await store.flush()
        assert isinstance(failed.value.cause, sqlite3.OperationalError)
        with pytest.raises(StoreWriteFailed, match="a write failed: database or disk is full"):  # a job needing a page
            await store.write(lambda c: c.execute("INSERT INTO link_events (at, controller_id, state, error) VALUES (0, 'x', 'x', ?)", ["x" * 50_000]))
        health = store.health()
        assert not health.healthy and "full" in (health.last_error or "") and health.failed_batches >= 2
        assert health.observations_pending == 200 and health.observations_dropped == 0

        # Room again: everything lands.
        await store.write(lambda c: c.execute("PRAGMA max_page_count = 1000000"))
        await store.flush()
        assert store.health().healthy
        assert await count(store, "readings") == 200 and await count(store, "reading_values") == 200
        stored = await store.observations.readings("c7")
        assert stored[0].measurements == {"voltage_l1_v": 229.5, "output_ch1_pct": 50.0}
        assert store.health().observations_dropped == 0


async def test_a_full_queue_makes_async_writers_wait_and_loses_nothing(backend: StoreBackend) -> None:
    async with opened(backend.target("queue"), queue_size=3) as store:

        def insert(n: int) -> Callable[[Connection], int]:
            return lambda c: int(c.execute("INSERT INTO link_events (at, controller_id, state) VALUES (?, ?, 'x')", [n, f"w{n}"]).lastrowid or 0)

        async with writer_held(store):
            writers = [asyncio.ensure_future(store.write(insert(n))) for n in range(10)]
            await eventually(lambda: store.health().queued_writes == 3)
            await asyncio.sleep(0.1)
            health = store.health()
            assert health.queued_writes == 3 and health.waiting_for_room == 7
            assert not any(w.done() for w in writers)
        ids = await asyncio.gather(*writers)
        assert len(set(ids)) == 10
        rows = await store.read("SELECT controller_id FROM link_events ORDER BY at")
        assert [r["controller_id"] for r in rows] == [f"w{n}" for n in range(10)]  # in the order they came
        assert store.health().queued_writes == 0 and store.health().waiting_for_room == 0


async def test_observations_beyond_the_buffer_are_counted_as_dropped(backend: StoreBackend, caplog: pytest.LogCaptureFixture) -> None:
    async with opened(backend.target("buffer"), observation_limit=20) as store:
        async with writer_held(store):
            for n in range(50):
                store.observations.record_link(f"c{n}", "online", None)
            health = store.health()
            assert health.observations_pending == 20 and health.observations_dropped == 30
        await store.flush()
        assert await count(store, "link_events") == 20
        assert store.health().observations_dropped == 30
    assert sum("observation records dropped" in r.getMessage() for r in caplog.records) == 1


async def test_readers_run_side_by_side_and_do_not_wait_for_the_writer(backend: StoreBackend) -> None:
    async with opened(backend.target("readers"), readers=2) as store:
        await store.commands.started(user="u", source="t", action="committed", scene=None, target="*")
        both_inside = threading.Barrier(2, timeout=5)

        def meet(conn: Connection) -> int:
            both_inside.wait()  # passes only if the two reads run at the same time
            return int(conn.execute("SELECT COUNT(*) AS n FROM commands").fetchone()["n"])

        assert await asyncio.gather(store.read_with(meet), store.read_with(meet)) == [1, 1]

        # The writer in the middle of a transaction: reads go on and see what was committed.
        async with writer_held(store):
            pending = asyncio.ensure_future(store.commands.started(user="u", source="t", action="later", scene=None, target="*"))
            started = time.monotonic()
            assert [c.action for c in await store.commands.recent()] == ["committed"]
            assert time.monotonic() - started < 1.0
        await pending
        assert [c.action for c in await store.commands.recent()] == ["later", "committed"]


async def test_old_readings_are_pruned_in_small_steps(backend: StoreBackend) -> None:
    path = backend.target("prune")
    old, now = time.time() - 3 * 86400, time.time()
    async with opened(path) as store:
        for n in range(PRUNE_BATCH + 500):
            store.observations.record_reading("c1", reading(old + n, voltage_l1_v=230.0, output_ch1_pct=10.0))
        for n in range(10):
            store.observations.record_reading("c1", reading(now + n, output_ch1_pct=20.0))
        await store.flush()
        assert await count(store, "readings") == PRUNE_BATCH + 510
    # Pruning runs in the writer once the store opens, then every few minutes.
    async with opened(path, reading_retention_days=1) as store:
        await eventually(lambda: _count_is(store, "readings", 10))
        assert await count(store, "reading_values") == 10
        kept = await store.observations.readings("c1")
        assert [r.measurements for r in kept] == [{"output_ch1_pct": 20.0}] * 10


async def _count_is(store: Store, table: str, expected: int) -> bool:
    return await count(store, table) == expected
