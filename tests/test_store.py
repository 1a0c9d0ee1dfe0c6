"""Records: audit rows, migrations, and a daemon killed with SIGKILL in the middle of a command.
The writer's failures, backpressure and readers: test_store_writer.py; migrations:
test_store_migrations.py; opening and closing: test_store_lifecycle.py; what is PostgreSQL's own:
test_store_postgresql.py. Tests taking the ``backend`` fixture run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from drivers.base import Fault
from lightctl.runtime.credentials import LocalCredentialError
from lightctl.runtime.daemon import Daemon
from lightctl.store import Store
from lightctl.store.migrate import known_migrations, table_exists
from tests.conftest import (
    StoreBackend,
    free_port,
    installation_data,
    local_secret,
    modbus_controller,
    with_endpoints,
)
from tests.test_cli import lightctl

RECORD_TABLES = ("commands", "command_results", "state_changes", "readings", "reading_values", "overrides",
                 "federation_outbox", "federation_events")


async def test_migrations_and_integrity(backend: StoreBackend) -> None:
    target = backend.target("a")
    for _ in range(2):  # the second opening is idempotent: nothing left to apply
        store = Store(target)
        await asyncio.to_thread(store.open)
        await asyncio.to_thread(store.close)
    store = Store(target)
    await asyncio.to_thread(store.open)
    try:
        applied = [row["version"] for row in await store.read("SELECT version FROM schema_migrations ORDER BY version")]
        assert applied == [m.version for m in known_migrations()] and applied[:2] == [1, 2]
        dialect = store.backend.dialect
        assert await store.read_with(lambda conn: all(table_exists(conn, t, dialect) for t in RECORD_TABLES))
        runs = await store.read("SELECT closed_at FROM store_runs ORDER BY id")
        assert len(runs) == 3 and all(r["closed_at"] is not None for r in runs[:2])
    finally:
        await asyncio.to_thread(store.close)
    if backend.kind == "sqlite":
        db = sqlite3.connect(target)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()


async def test_a_failing_write_is_rolled_back_alone(backend: StoreBackend) -> None:
    store = Store(backend.target("b"))
    await asyncio.to_thread(store.open)
    try:
        store.observations.record_link("x", "online", None)
        ok = asyncio.ensure_future(store.write(lambda c: c.execute("INSERT INTO link_events (at, controller_id, state) VALUES (1,'z','online')")))
        with pytest.raises(backend.integrity_error):
            await store.write(lambda c: c.execute("INSERT INTO link_events (at, controller_id, state) VALUES (1,'y',NULL)"))
        await ok
        await store.flush()
        rows = await store.read("SELECT controller_id FROM link_events ORDER BY controller_id")
        assert [r["controller_id"] for r in rows] == ["x", "z"]
        assert store.health().healthy  # a job's own error is not the store's
    finally:
        await asyncio.to_thread(store.close)


async def test_command_audit_has_every_controllers_result(make_farm, backend: StoreBackend) -> None:  # type: ignore[no-untyped-def]
    data = installation_data([modbus_controller(f"a{i}", i) for i in range(6)])
    farm, config = await make_farm(data)
    await farm.inject("a5", Fault("offline"))
    daemon = Daemon(config, database=backend.target("audit"))
    await daemon.start()
    try:
        report = await daemon.apply_scene("half", "*", user="张工")
        rows = await daemon.store.commands.recent(5)
        command = next(r for r in rows if r.id == report.command_id)
        assert command.user == "张工" and command.scene == "half" and command.target == "*"
        assert command.status == "done" and command.confirmed == 5 and command.failed == 1
        assert command.finished_at is not None and command.at <= command.finished_at
        results = {r.controller_id: r for r in await daemon.store.commands.results(report.command_id)}
        assert set(results) == {f"a{i}" for i in range(6)}
        assert results["a5"].status == "failed" and results["a5"].error
        assert all(results[f"a{i}"].status == "confirmed" for i in range(5))
        # The start-up reconcile was audited too, and the override is a record.
        assert any(r.source == "startup" for r in rows)
        assert [o.scene for o in await daemon.store.layers.active()] == ["half"]
    finally:
        await daemon.stop()


def _daemon_process(config_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lightctl", "--config", str(config_path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=config_path.parent,
    )


def _local(database: Path) -> dict[str, str]:
    """The local credential the daemon wrote when it started (none yet: no header)."""
    try:
        return {"Authorization": f"Bearer {local_secret(database)}"}
    except LocalCredentialError:
        return {}


async def _wait_for_api(port: int, database: Path, timeout: float = 30.0) -> None:
    """Until the daemon answers with the credential it wrote at this start (an older one is 401)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/api/v1/status", headers=_local(database)) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"daemon API on port {port} did not come up")


async def _status(port: int, database: Path) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/v1/status"
    async with aiohttp.ClientSession() as session, session.get(url, headers=_local(database)) as response:
        result: dict[str, Any] = await response.json()
        return result


async def _wait_until_converged(port: int, database: Path, controllers: int, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = await _status(port, database)
        if status["controllers_online"] == controllers and status["channels_pending"] == 0:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"daemon did not converge: {status}")
        await asyncio.sleep(0.1)


async def test_sigkill_mid_command_leaves_an_intact_database_and_restart_reconciles(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    data = installation_data([modbus_controller(f"s{i}", i, timeout_s=3.0) for i in range(10)], api_port=port, database=str(tmp_path / "kill.db"), deadline_s=5.0)
    farm, _config = await make_farm(data)
    config_path = tmp_path / "config.yaml"  # JSON is YAML: the daemon reads it as its config file
    config_path.write_text(json.dumps(with_endpoints(data, farm.endpoints), ensure_ascii=False), encoding="utf-8")

    daemon = _daemon_process(config_path)
    try:
        await _wait_for_api(port, tmp_path / "kill.db")
        await _wait_until_converged(port, tmp_path / "kill.db", controllers=10)  # the start-up reconcile is done
        # the operator and a token, made on the running daemon's records by the CLI beside it
        code, _, err = await lightctl("--config", str(config_path), "user", "add", "值班员", "--role", "operator")
        assert code == 0, err
        code, out, err = await lightctl("--config", str(config_path), "token", "create", "--user", "值班员", "--label", "test", "--json")
        assert code == 0, err
        token = json.loads(out)["token"]
        for i in range(5):  # half the cabinets answer slowly: the command is still running when we kill
            await farm.inject(f"s{i}", Fault("slow", value=2.0))
        async with aiohttp.ClientSession() as session:
            request = asyncio.ensure_future(
                session.post(
                    f"http://127.0.0.1:{port}/api/v1/scenes/all-on/apply",
                    json={"target": "*"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            await asyncio.sleep(0.8)
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=10)
            with pytest.raises(aiohttp.ClientError):
                response = await request
                await response.read()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    db = sqlite3.connect(tmp_path / "kill.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    running = db.execute("SELECT user_name, scene, status FROM commands WHERE scene='all-on'").fetchall()
    assert running == [("值班员", "all-on", "running")]
    half_written = db.execute(
        "SELECT COUNT(*) FROM command_results r JOIN commands c ON c.id = r.command_id WHERE c.status != 'done'"
    ).fetchone()[0]
    assert half_written == 0
    db.close()

    for i in range(5):
        await farm.clear(f"s{i}", "slow")
    daemon = _daemon_process(config_path)
    try:
        await _wait_for_api(port, tmp_path / "kill.db")
        status = await _wait_until_converged(port, tmp_path / "kill.db", controllers=10)
        assert [o["scene"] for o in status["overrides"]] == ["all-on"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        output = daemon.communicate(timeout=20)[0].decode()
    assert daemon.returncode == 0, output
    db = sqlite3.connect(tmp_path / "kill.db")
    assert db.execute("SELECT status FROM commands WHERE scene='all-on'").fetchone()[0] == "interrupted"
    startup = db.execute("SELECT id, confirmed, failed FROM commands WHERE source='startup' ORDER BY id DESC").fetchone()
    assert startup[1] == 10 and startup[2] == 0
    # The killed run never recorded its stop, so the restart checked integrity; it stopped cleanly.
    runs = db.execute("SELECT integrity_checked, closed_at IS NOT NULL FROM store_runs ORDER BY id").fetchall()
    assert runs == [(0, 0), (1, 1)]  # (a new database is not checked: there is nothing in it yet)
    db.close()
    assert os.path.exists(tmp_path / "kill.db")



async def test_a_write_whose_waiter_gave_up_still_lands_and_the_writer_lives(backend: StoreBackend) -> None:
    store = Store(backend.target("c"))
    await asyncio.to_thread(store.open)
    try:
        slow = asyncio.ensure_future(
            store.write(lambda c: c.execute("INSERT INTO link_events (at, controller_id, state) VALUES (1,'a','x')"))
        )
        await asyncio.sleep(0)  # queued; now its waiter gives up
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)
        await store.write(lambda c: c.execute("INSERT INTO link_events (at, controller_id, state) VALUES (1,'b','x')"))
        rows = await store.read("SELECT controller_id FROM link_events ORDER BY id")
        assert [r["controller_id"] for r in rows] == ["a", "b"]
    finally:
        await asyncio.to_thread(store.close)
