"""What is PostgreSQL's own in the store (lightctl.store.postgresql): SQLite's SQL as the repositories
write it, one daemon per database, and a server that drops the connection or restarts. The
repositories' own tests run on both backends (the ``backend`` fixture)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from lightctl.store import Store, StoreWriteFailed
from lightctl.store.ownership import DatabaseInUse
from lightctl.store.postgresql import numbered_placeholders, without_password
from tests.conftest import StoreBackend


@pytest.fixture
def pg(postgres: Any) -> StoreBackend:
    from tests.conftest import _database_numbers

    return StoreBackend("postgresql", lambda name: str(postgres.create_database(f"{name}_{next(_database_numbers)}")), Exception)


def test_placeholders_are_numbered_outside_text_and_comments() -> None:
    sql = "SELECT '?', \"a?\" FROM t -- what?\nWHERE x = ? AND y IN (?, ?) /* ? */ AND z = 'it''s ?'"
    assert numbered_placeholders(sql) == (
        "SELECT '?', \"a?\" FROM t -- what?\nWHERE x = $1 AND y IN ($2, $3) /* ? */ AND z = 'it''s ?'"
    )
    assert without_password("postgresql://city:s3cret@db.example:5433/lightctl") == "postgresql://city:***@db.example:5433/lightctl"
    assert without_password("postgresql://city@db.example/lightctl") == "postgresql://city@db.example/lightctl"


async def test_sqlite_idioms_work_unchanged(pg: StoreBackend) -> None:
    store = Store(pg.target("idioms"))
    await asyncio.to_thread(store.open)
    try:
        def job(conn: Any) -> tuple[Any, ...]:
            first = conn.execute("INSERT INTO commands (at, user_name, source, action, status) VALUES (?,?,?,?, 'x')",
                                 [1, "u", "s", "a"]).lastrowid
            second = conn.execute("INSERT INTO commands (at, user_name, source, action, status) VALUES (?,?,?,?, 'x')",
                                  [2, "u", "s", "a"]).lastrowid
            updated = conn.execute("UPDATE commands SET status = 'y' WHERE at >= ?", [1]).rowcount
            conn.execute("INSERT INTO state_changes (at, controller_id, channel_id, is_on) VALUES (?,?,?,?)", [1, "c", "1", 1])
            total = conn.execute("SELECT SUM(at), AVG(at) FROM commands").fetchone()
            return first, second, updated, total

        first, second, updated, total = await store.write(job)
        assert (second - first, updated) == (1, 2)
        assert total == (3, 1.5) and isinstance(total[0], int)  # numeric comes back as SQLite gives it
        assert [r["is_on"] for r in await store.read("SELECT is_on FROM state_changes")] == [True]
    finally:
        await asyncio.to_thread(store.close)


async def test_one_daemon_per_database(pg: StoreBackend) -> None:
    url = pg.target("owner")
    first = Store(url)
    await asyncio.to_thread(first.open)
    try:
        with pytest.raises(DatabaseInUse, match="in use by another lightctl process"):
            await asyncio.to_thread(Store(url).open)
    finally:
        await asyncio.to_thread(first.close)
    again = Store(url)  # the lock went with the connection
    await asyncio.to_thread(again.open)
    await asyncio.to_thread(again.close)


async def _terminate_writer(postgres: Any, database: str) -> None:
    await asyncio.to_thread(
        postgres.psql,
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()",
    )


async def test_a_dropped_connection_fails_only_the_batch_it_cut_and_the_store_reconnects(postgres: Any, pg: StoreBackend) -> None:
    url = pg.target("dropped")
    store = Store(url)
    await asyncio.to_thread(store.open)
    try:
        await store.commands.started(user="u", source="t", action="before", scene=None, target="*")
        # Connections found closed between batches are opened again before the next one.
        await _terminate_writer(postgres, url.rsplit("/", 1)[1])
        await store.commands.started(user="u", source="t", action="between", scene=None, target="*")
        assert store.health().healthy
        # A connection lost in the middle of a batch fails that batch: the store's failure, not the job's.
        store.observations.record_link("c1", "offline", "x")
        with pytest.raises(StoreWriteFailed, match="connection to PostgreSQL was lost") as failed:
            await store.write(lambda c: c.execute("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert "terminat" in str(failed.value.cause)
        assert not store.health().healthy
        await store.commands.started(user="u", source="t", action="after", scene=None, target="*")
        await store.flush()  # the observation kept across the failure lands
        assert store.health().healthy
        assert [c.action for c in await store.commands.recent()] == ["after", "between", "before"]  # readers reconnect too
        assert [e["state"] for e in await store.observations.link_events("c1")] == ["offline"]
        # The owner lock came back with the writer's new connection.
        with pytest.raises(DatabaseInUse):
            await asyncio.to_thread(Store(url).open)
    finally:
        await asyncio.to_thread(store.close)


async def test_a_server_restart_loses_no_observation(postgres: Any, pg: StoreBackend) -> None:
    store = Store(pg.target("restart"))
    await asyncio.to_thread(store.open)
    try:
        restart = asyncio.ensure_future(asyncio.to_thread(postgres.restart))
        now = time.time()
        for n in range(200):
            store.observations.record_link(f"c{n}", "online", None)
            await asyncio.sleep(0.005)
        await restart
        deadline = time.monotonic() + 30
        while True:  # observations are retried by themselves once the server answers again
            try:
                await store.flush()
                break
            except StoreWriteFailed:
                assert time.monotonic() < deadline, "the store did not recover from the restart"
                await asyncio.sleep(0.2)
        rows = await store.read("SELECT COUNT(*) AS n FROM link_events WHERE at >= ?", [int(now * 1000) - 1000])
        assert rows[0]["n"] == 200 and store.health().observations_dropped == 0
    finally:
        await asyncio.to_thread(store.close)
