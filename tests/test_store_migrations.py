"""Migrations as numbered files: from an empty database, from a database of the lightctl before
migration files (rows converted), gaps, refusals, and the SQL shared with PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lightctl.model.times import to_ms
from lightctl.store import Store, StoreError, StoreTooNew
from lightctl.store.backend import PostgresqlBackend
from lightctl.store.migrate import (
    MANAGED_USER_VERSION,
    POSTGRESQL,
    SQLITE,
    Dialect,
    Migration,
    known_migrations,
    migrate,
    statements,
    table_exists,
)
from lightctl.store.observations import READING_COLUMNS
from lightctl.store.sql import Connection
from tests.conftest import StoreBackend

SHANGHAI = ZoneInfo("Asia/Shanghai")

LEGACY_DDL = """
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
"""
"""The schema of lightctl/store.py before migration files (its migrations 1 and 2, user_version 2)."""


def utc_text(at: datetime) -> str:
    """A time as that lightctl stored it."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


T0 = datetime(2026, 12, 1, 19, 30, 0, 125000, tzinfo=SHANGHAI)


def legacy_database(path: Path, *, bad_time: str | None = None) -> None:
    """A database as the lightctl before migration files left it, with a row in every table."""
    db = sqlite3.connect(path)
    db.executescript(LEGACY_DDL)
    db.execute("PRAGMA user_version=2")
    t = [utc_text(T0 + timedelta(seconds=s)) for s in range(10)]
    db.executemany(
        "INSERT INTO commands (id, at, user, source, action, scene, target, status, finished_at, elapsed_s, confirmed,"
        " unconfirmed, failed, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (1, bad_time or t[0], "张工", "operator", "override", "half", "*", "done", t[1], 0.42, 2, 0, 1, None),
            (2, t[2], "lightctl", "schedule", "reconcile", None, "dusk", "running", None, None, None, None, None, None),
        ],
    )
    db.executemany(
        "INSERT INTO command_results VALUES (?,?,?,?,?,?,?,?)",
        [(1, "m1", "confirmed", None, None, 2, 8, 0.1), (1, "m2", "failed", "timeout", "no reply in 3 s", 1, 8, 3.0)],
    )
    db.execute(
        "INSERT INTO state_changes (at, controller_id, channel_id, is_on, level, power_w, faults) VALUES (?,?,?,?,?,?,?)",
        [t[3], "m1", "c1", 1, 50.0, 600.0, "breaker_trip,lamp_failure"],
    )
    measurements = {"voltage_l1_v": 229.5, "voltage_l2_v": 230, "current_l3_a": 4.25, "output_c1_pct": 50.0,
                    "c2.gear_missing": 0, "scene": None}
    db.execute(
        "INSERT INTO readings (at, controller_id, power_w, energy_kwh, faults, measurements) VALUES (?,?,?,?,?,?)",
        [t[4], "m1", 1200.5, 33.25, None, json.dumps(measurements)],
    )
    db.execute("INSERT INTO readings (at, controller_id, power_w, energy_kwh, faults, measurements) VALUES (?,?,?,?,?,?)",
               [t[5], "o1", 80.0, None, "door_open", json.dumps({})])
    db.execute("INSERT INTO link_events (at, controller_id, state, error) VALUES (?,?,?,?)", [t[6], "m2", "offline", "refused"])
    until = (T0 + timedelta(hours=3)).isoformat()  # in the installation's zone, as the daemon wrote it
    db.executemany(
        "INSERT INTO overrides (id, created_at, user, kind, scene, target, until, cleared_at, cleared_by, cap)"
        " VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (1, t[0], "张工", "override", "half", "*", until, None, None, None),
            (2, t[7], "调度", "curtail", "curtail", "site:s1", None, t[8], "调度", 30.0),
        ],
    )
    db.execute("INSERT INTO curtail_shed VALUES (2, 'm1', 'c1', 12, 80.0, 30.0, 900.0)")
    db.execute("INSERT INTO show_runs (id, show_id, user, started_at, ended_at, status, loops_done, detail) VALUES (?,?,?,?,?,?,?,?)",
               [1, "confluence", "导演", t[8], None, "holding", 1, None])
    db.execute("INSERT INTO show_cue_results VALUES (1, 0, 3, 'm1', 'sent', 12.5, NULL)")
    db.commit()
    db.close()


def ms(seconds: float) -> int:
    return to_ms(T0 + timedelta(seconds=seconds))


async def test_a_database_of_the_old_schema_is_converted_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    legacy_database(path)
    store = Store(path)
    store.open()
    try:
        command, running = sorted(await store.commands.recent(), key=lambda c: c.id)
        assert (command.at, command.finished_at, command.user, command.elapsed_s, command.failed) == (ms(0), ms(1), "张工", 0.42, 1)
        assert running.status == "interrupted" and running.at == ms(2) and running.finished_at is not None  # cut short
        assert command.as_json(SHANGHAI)["at"] == "2026-12-01T19:30:00.125+08:00"
        results = await store.commands.results(1)
        assert [(r.controller_id, r.status, r.error_kind, r.elapsed_s) for r in results] == [
            ("m1", "confirmed", None, 0.1), ("m2", "failed", "timeout", 3.0)]
        (change,) = await store.observations.state_changes("m1")
        assert (change["at"], change["is_on"], change["level"], change["faults"]) == (ms(3), True, 50.0, {"breaker_trip", "lamp_failure"})
        (m1,) = await store.observations.readings("m1")
        assert (m1.at, m1.power_w, m1.energy_kwh, m1.faults) == (ms(4), 1200.5, 33.25, frozenset())
        assert m1.measurements == {"voltage_l1_v": 229.5, "voltage_l2_v": 230.0, "current_l3_a": 4.25,
                                   "output_c1_pct": 50.0, "c2.gear_missing": 0.0}  # a null figure says nothing
        (o1,) = await store.observations.readings("o1")
        assert (o1.at, o1.faults, o1.measurements) == (ms(5), frozenset({"door_open"}), {})
        typed = await store.read("SELECT voltage_l1_v, voltage_l2_v, voltage_l3_v, typeof(voltage_l2_v) AS t FROM readings WHERE controller_id='m1'")
        assert typed == [{"voltage_l1_v": 229.5, "voltage_l2_v": 230.0, "voltage_l3_v": None, "t": "real"}]
        (link,) = await store.observations.link_events("m2")
        assert (link["at"], link["state"], link["error"]) == (ms(6), "offline", "refused")
        (override,) = await store.layers.active()
        assert (override.id, override.user, override.until, override.created_at) == (1, "张工", ms(3 * 3600), ms(0))
        cleared = await store.read("SELECT created_at, cleared_at, cap FROM overrides WHERE id=2")
        assert cleared == [{"created_at": ms(7), "cleared_at": ms(8), "cap": 30.0}]
        shed = await store.read("SELECT * FROM curtail_shed")
        assert shed == [{"override_id": 2, "controller_id": "m1", "channel_id": "c1", "luminaires": 12,
                         "level_before": 80.0, "level_after": 30.0, "shed_w": 900.0}]
        (run,) = await store.shows.recent()
        assert (run.user, run.started_at, run.status, run.loops_done) == ("导演", ms(8), "interrupted", 1)
        cues = await store.read("SELECT * FROM show_cue_results")
        assert cues == [{"run_id": 1, "loop": 0, "cue": 3, "controller_id": "m1", "status": "sent", "sent_offset_ms": 12.5, "error": None}]
        # New rows follow the old ones.
        assert await store.commands.started(user="u", source="t", action="a", scene=None, target="*") == 3
    finally:
        store.close()
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not any(t.startswith("legacy_") for t in tables)
    assert db.execute("PRAGMA user_version").fetchone()[0] == MANAGED_USER_VERSION
    assert [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY 1")] == [m.version for m in known_migrations()]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == [] and db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


async def test_a_conversion_that_fails_leaves_the_old_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    legacy_database(path, bad_time="yesterday evening")
    with pytest.raises(StoreError, match="cannot convert commands #1: at 'yesterday evening' is not an ISO 8601 time"):
        Store(path).open()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("SELECT user, at FROM commands WHERE id=1").fetchone() == ("张工", "yesterday evening")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "schema_migrations" not in tables and "legacy_commands" not in tables
    db.close()


async def test_from_an_empty_database_every_migration_applies(backend: StoreBackend) -> None:
    path = backend.target("empty")
    if backend.kind == "sqlite":
        Path(path).touch()
    store = Store(path)
    await asyncio.to_thread(store.open)
    try:
        if backend.kind == "sqlite":
            columns = {r["name"]: r["type"] for r in await store.read("PRAGMA table_info(readings)")}
            indexes = {r["name"] for r in await store.read("PRAGMA index_list(readings)")}
            assert (await store.read("PRAGMA user_version"))[0]["user_version"] == MANAGED_USER_VERSION
        else:
            columns = {r["column_name"]: r["data_type"].upper() for r in await store.read(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'readings'")}
            indexes = {r["indexname"] for r in await store.read("SELECT indexname FROM pg_indexes WHERE tablename = 'readings'")}
            indexes.discard("readings_pkey")
            identity = await store.read("SELECT table_name FROM information_schema.columns WHERE is_identity = 'YES' ORDER BY 1")
            assert {"commands", "readings", "overrides", "federation_outbox"} <= {r["table_name"] for r in identity}
        assert set(READING_COLUMNS) <= set(columns) and columns["at"] == "BIGINT"
        assert indexes == {"readings_hour_controller"}
    finally:
        await asyncio.to_thread(store.close)


async def test_a_database_from_a_newer_lightctl_is_refused_and_left_alone(backend: StoreBackend) -> None:
    path = backend.target("newer")
    store = Store(path)
    await asyncio.to_thread(store.open)
    await store.write(lambda c: c.execute("INSERT INTO schema_migrations VALUES (9001, 'from_the_future', 0)"))
    runs = len(await store.read("SELECT id FROM store_runs"))
    await asyncio.to_thread(store.close)
    newest = known_migrations()[-1].file[:4]
    with pytest.raises(StoreTooNew, match=rf"9001_from_the_future that this lightctl does not know \(it knows up to {newest}\)"):
        await asyncio.to_thread(Store(path).open)
    store = Store(path)
    with pytest.raises(StoreTooNew):
        await asyncio.to_thread(store.open)
    other = Store(backend.target("other"))  # (the refused store took nothing: another opens freely)
    await asyncio.to_thread(other.open)
    await asyncio.to_thread(other.close)
    if backend.kind == "sqlite":
        db = sqlite3.connect(path)
        assert db.execute("SELECT COUNT(*) FROM store_runs").fetchone()[0] == runs
        db.close()


async def test_a_database_of_no_known_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE commands (x)")
    db.execute("PRAGMA user_version=7")
    db.close()
    with pytest.raises(StoreError, match="not a lightctl database this version can migrate"):
        Store(path).open()


def _bare_connection(backend: StoreBackend) -> tuple[Connection, Dialect, str, Any]:
    """A connection to a new database with no migration applied, its dialect, how the database
    names a missing table, and how to close it."""
    if backend.kind == "sqlite":
        conn = sqlite3.connect(":memory:", isolation_level=None)
        return conn, SQLITE, "no such table: nowhere", conn.close
    pg = PostgresqlBackend(backend.target("bare"))
    conn = pg.connect_writer()  # (rows as tuples, as the migrations see them)

    def close() -> None:
        pg.disconnect(conn)
        pg.close()

    return conn, pg.dialect, 'relation "nowhere" does not exist', close


def test_migrations_apply_in_order_fill_gaps_and_roll_back_whole(backend: StoreBackend) -> None:
    conn, dialect, missing, close = _bare_connection(backend)
    try:
        first = Migration(1, "a", "CREATE TABLE a (x INTEGER);")
        third = Migration(3, "c", "CREATE TABLE c (x INTEGER); INSERT INTO c VALUES (1);")
        assert [m.version for m in migrate(conn, "t", [third, first], dialect)] == [1, 3]
        second = Migration(2, "b", "CREATE TABLE b (x TEXT DEFAULT 'a;b'); -- a comment; with a semicolon\nINSERT INTO b DEFAULT VALUES;")
        assert [m.version for m in migrate(conn, "t", [first, second, third], dialect)] == [2]  # merged late, lower number
        assert conn.execute("SELECT x FROM b").fetchall() == [("a;b",)]
        broken = Migration(4, "d", "CREATE TABLE d (x INTEGER); INSERT INTO nowhere VALUES (1);")
        with pytest.raises(StoreError, match=rf"migration 0004_d\.sql failed and was rolled back: {missing}"):
            migrate(conn, "t", [first, second, third, broken], dialect)
        assert not table_exists(conn, "d", dialect) and table_exists(conn, "c", dialect)
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")] == [1, 2, 3]
    finally:
        close()


def test_statements_end_where_sqlite_says_they_end() -> None:
    script = "-- header; not a statement\nCREATE TABLE t (s TEXT DEFAULT ';');\nINSERT INTO t VALUES ('x;y');\n-- trailing note\n"
    assert [s.strip() for s in statements(script, "t")] == [
        "-- header; not a statement\nCREATE TABLE t (s TEXT DEFAULT ';');",
        "INSERT INTO t VALUES ('x;y');",
    ]
    with pytest.raises(StoreError, match="no closing ';'"):
        list(statements("CREATE TABLE t (x);\nCREATE TABLE u (y)", "t"))


def test_the_migration_files_translate_to_postgresql() -> None:
    for migration in known_migrations():
        sql = "\n".join(line.split("--", 1)[0] for line in POSTGRESQL.translate(migration.sql).splitlines())
        for sqlite_only in ("INTEGER PRIMARY KEY", "WITHOUT ROWID", "AUTOINCREMENT", "INSERT OR", " REAL", "PRAGMA"):
            assert sqlite_only not in sql, (migration.file, sqlite_only)
    assert "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" in POSTGRESQL.translate(known_migrations()[0].sql)
