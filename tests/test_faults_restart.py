"""A daemon killed with SIGKILL while faults are open starts again with the same faults: judged
again, never opened twice."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
from conftest import free_port, installation_data, local_secret, modbus_controller, with_endpoints
from test_store import _daemon_process, _wait_for_api

from drivers.base import Fault


def open_faults(database: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT fault_key, id FROM faults WHERE cleared_at IS NULL").fetchall())


def all_faults(database: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT fault_key, id FROM faults ORDER BY id").fetchall()


async def api_faults(port: int, database: Path) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {local_secret(database)}"}
    url = f"http://127.0.0.1:{port}/api/v1/faults?active=1"
    async with aiohttp.ClientSession(headers=headers) as session, session.get(url) as response:
        assert response.status == 200
        found: list[dict[str, Any]] = (await response.json())["faults"]
        return found


async def until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await predicate() if asyncio.iscoroutinefunction(predicate) else predicate()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_no_duplicate_fault_after_sigkill_and_restart(make_farm: Any, tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "kill.db"
    data = installation_data([modbus_controller(f"k{i}", i, channels=2, poll_s=0.5) for i in range(3)], per_site=3,
                             api_port=port, database=str(database))
    data["faults"] = {"clear_holdoff_s": 1.0}
    farm, _ = await make_farm(data)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(with_endpoints(data, farm.endpoints), ensure_ascii=False), encoding="utf-8")
    await farm.inject("k0", Fault("door_open"))
    await farm.inject("k1", Fault("breaker_trip", "c2"))

    daemon = _daemon_process(config_path)
    try:
        await _wait_for_api(port, database)
        before = await until(lambda: len(open_faults(database)) == 2 and open_faults(database), 15.0, "two faults recorded")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    daemon = _daemon_process(config_path)
    try:
        await _wait_for_api(port, database)
        await asyncio.sleep(2.0)  # a few polls: both conditions are seen again
        active = await api_faults(port, database)
        assert sorted((f["kind"], f["location"]["controller"]["id"]) for f in active) == [("breaker_trip", "k1"), ("door_open", "k0")]
        assert {f["id"] for f in active} == set(before.values())
        assert [key for key, _ in all_faults(database)] == sorted(before, key=before.__getitem__)  # never a second row
        # and a condition that went away while the daemon was down clears once it is judged again
        await farm.clear("k0")
        await until(lambda: set(open_faults(database)) == {k for k in before if k.startswith("breaker_trip")}, 10.0, "k0's door closed")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        finally:
            if daemon.poll() is None:
                daemon.kill()
