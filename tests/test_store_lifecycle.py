"""Opening and closing the store: the integrity check only after an unclean stop, what a stop cut
short marked interrupted, and the store's health in the daemon's status (API and CLI)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from lightctl.process.service import start_daemon
from lightctl.resolve.loading import load_config
from lightctl.store import Store, StoreWriteFailed
from tests.conftest import StoreBackend, installation_data, local_secret, modbus_controller, with_endpoints
from tests.test_cli import lightctl

KILLED_WHILE_OPEN = """
import os, sys
from lightctl.store import Store, StoreWriteFailed
store = Store(sys.argv[1])
store.open()
os._exit(0)  # no close: as if the power had failed
"""


def reopen(path: Path) -> bool:
    """Open and close; whether the opening checked integrity."""
    store = Store(path)
    store.open()
    store.close()
    return store.integrity_checked


def test_integrity_is_checked_only_after_an_unclean_stop(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lightctl.store")
    path = tmp_path / "quick.db"
    assert not reopen(path)  # a new database: nothing to check, and no word of an unclean stop
    assert any("a new database" in r.getMessage() for r in caplog.records)
    assert not any("not clean" in r.getMessage() for r in caplog.records)
    caplog.clear()
    assert not reopen(path) and not reopen(path)
    assert not any("checking integrity" in r.getMessage() for r in caplog.records)

    subprocess.run([sys.executable, "-c", KILLED_WHILE_OPEN, str(path)], check=True, timeout=60)
    assert reopen(path)
    assert any("the last stop was not clean" in r.getMessage() for r in caplog.records)
    assert not reopen(path)
    db = sqlite3.connect(path)
    runs = db.execute("SELECT integrity_checked, closed_at IS NOT NULL FROM store_runs ORDER BY id").fetchall()
    assert runs == [(0, 1), (0, 1), (0, 1), (0, 0), (1, 1), (0, 1)]
    db.close()


KILLED_MID_COMMAND = """
import asyncio, os, sys
from lightctl.store import Store, StoreWriteFailed

async def main():
    store = Store(sys.argv[1])
    store.open()
    done = await store.commands.started(user="u", source="operator", action="override", scene="half", target="*")
    await store.commands.finished(done, 0.5, [])
    await store.commands.started(user="u", source="operator", action="override", scene="all-on", target="*")
    finished = await store.shows.show_started("confluence", "导演")
    await store.shows.show_finished(finished, "done", 1, [(0, 0, "m1", "sent", 1.5, None)], None)
    held = await store.shows.show_started("confluence", "导演")
    await store.shows.show_finished(held, "holding", 1, [(0, 0, "m1", "sent", 2.0, None)], None)
    await store.shows.show_started("魅力重庆", "导演")
    os._exit(0)  # killed with a command and two show runs under way

asyncio.run(main())
"""


async def test_what_a_stop_cut_short_is_marked_interrupted(backend: StoreBackend) -> None:
    path = backend.target("cut")
    subprocess.run([sys.executable, "-c", KILLED_MID_COMMAND, path], check=True, timeout=60)
    store = Store(path)
    await asyncio.to_thread(store.open)
    try:
        assert store.integrity_checked == (backend.kind == "sqlite")  # PostgreSQL recovers by itself
        commands = await store.commands.recent()
        assert [(c.scene, c.status) for c in commands] == [("all-on", "interrupted"), ("half", "done")]
        assert commands[0].finished_at is not None and commands[0].finished_at >= commands[0].at
        runs = await store.shows.recent()
        assert [(r.show_id, r.status) for r in runs] == [
            ("魅力重庆", "interrupted"), ("confluence", "interrupted"), ("confluence", "done")]
        assert all(r.ended_at is not None for r in runs)
    finally:
        await asyncio.to_thread(store.close)


async def test_the_daemon_reports_an_unhealthy_store_in_its_status(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = installation_data([modbus_controller("m1", 0)], api_port=0, database=str(tmp_path / "health.db"))
    farm, _ = await make_farm(data)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(with_endpoints(data, farm.endpoints), ensure_ascii=False), encoding="utf-8")
    config = load_config(config_path)
    daemon, runner = await start_daemon(config)
    api = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
    cli = ("--config", str(config_path), "--url", api.removesuffix("/api/v1"))
    try:
        store = daemon.store
        await store.flush()  # the start-up's readings land first (they wait up to 50 ms to be batched)
        pages = await store.write(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
        await store.write(lambda c: c.execute(f"PRAGMA max_page_count = {pages}"))
        with pytest.raises(StoreWriteFailed, match="full"):  # a disk full: the write that needs a page fails
            await store.write(lambda c: c.execute("INSERT INTO link_events (at, controller_id, state, error) VALUES (0, 'x', 'x', ?)", ["x" * 50_000]))
        headers = {"Authorization": f"Bearer {local_secret(tmp_path / 'health.db')}"}
        async with aiohttp.ClientSession() as session, session.get(f"{api}/status", headers=headers) as response:
            status = (await response.json())["store"]
        assert status["healthy"] is False and "full" in status["last_error"]
        assert status["unhealthy_since"].endswith("+08:00") and status["failed_batches"] == 1
        code, out, _ = await lightctl(*cli, "status")
        assert code == 0 and "store UNHEALTHY since " in out and "database or disk is full" in out

        await store.write(lambda c: c.execute("PRAGMA max_page_count = 1000000"))
        await store.write(lambda c: None)
        code, out, _ = await lightctl(*cli, "status", "--json")
        assert json.loads(out)["store"]["healthy"] is True
        code, out, _ = await lightctl(*cli, "status")
        assert "store" not in out
    finally:
        await runner.cleanup()
        await daemon.stop()


async def test_the_daemon_refuses_to_start_on_a_database_from_a_newer_lightctl(tmp_path: Path, backend: StoreBackend) -> None:
    path = backend.target("newer")
    store = Store(path)
    await asyncio.to_thread(store.open)
    await store.write(lambda c: c.execute("INSERT INTO schema_migrations VALUES (9001, 'from_the_future', 0)"))
    await asyncio.to_thread(store.close)
    data = installation_data([modbus_controller("m1", 0)], api_port=0, database=path)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    code, _, err = await lightctl("--config", str(config_path), "run")
    assert code == 2 and "Traceback" not in err
    assert "9001_from_the_future that this lightctl does not know" in err and "written by a newer lightctl" in err


async def test_a_store_that_cannot_write_keeps_the_schedule_switching_and_refuses_operators(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The field matters more than its record: the daemon's own reconcile switches without one
    (and says so), while an operator's command that cannot be recorded is refused (HTTP 503)."""
    import sqlite3

    from lightctl.runtime.daemon import Daemon
    from lightctl.store import Store

    data = installation_data([modbus_controller("m1", 0)])
    _farm, config = await make_farm(data)
    path = tmp_path / "locked.db"
    daemon = Daemon(config, store=Store(path, busy_timeout_s=0.1))
    await daemon.start()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock: nothing can be recorded
        report = await daemon.reconcile("dusk", force=True)
        assert report is not None and report.command_id == 0 and report.outcome.count("confirmed") == 1
        with pytest.raises(StoreWriteFailed, match="database is locked"):
            await daemon.apply_scene("all-off", "*", user="值班员")
        assert daemon.overrides == []
    finally:
        other.execute("ROLLBACK")
        other.close()
        await daemon.stop()
