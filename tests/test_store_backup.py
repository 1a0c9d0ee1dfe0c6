"""Backup while the daemon runs (and writes), restore while it does not; one daemon per database."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import installation_data, modbus_controller, with_endpoints
from test_cli import lightctl

from lightctl.process.service import start_daemon
from lightctl.resolve.loading import load_config
from lightctl.store import Store
from lightctl.store.ownership import DatabaseInUse


async def test_a_backup_taken_while_the_daemon_writes_restores_whole(make_farm: Any, tmp_path: Path) -> None:
    db = tmp_path / "var" / "lightctl.db"
    data = installation_data([modbus_controller(f"b{i}", i) for i in range(3)], api_port=0, database=str(db))
    farm, _ = await make_farm(data)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(with_endpoints(data, farm.endpoints), ensure_ascii=False), encoding="utf-8")
    daemon, runner = await start_daemon(load_config(config_path))
    base = ("--config", str(config_path))
    try:
        for scene in ("all-on", "all-off", "all-on"):
            await daemon.apply_scene(scene, "*", user="值班员")
        (db.parent / "photos").mkdir(exist_ok=True)
        (db.parent / "photos" / "ab12.jpg").write_bytes(b"a crew's photo")

        async def keep_writing() -> None:  # the daemon goes on recording while the backup runs
            while True:
                await daemon.apply_scene("all-off", "*", user="值班员")
                await asyncio.sleep(0)

        writing = asyncio.create_task(keep_writing())
        try:
            code, out, err = await lightctl(*base, "backup", str(tmp_path / "b.db"), "--json")
        finally:
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)
        assert code == 0, err
        report = json.loads(out)
        assert report["integrity"] == "ok" and report["commands"] >= 4 and report["photos_copied"] == 1
        assert (tmp_path / "b.db.photos" / "ab12.jpg").read_bytes() == b"a crew's photo"
        code, _, err = await lightctl(*base, "backup", str(tmp_path / "b.db"))
        assert code == 2 and "exists" in err
        code, _, err = await lightctl(*base, "restore", str(tmp_path / "b.db"))
        assert code == 2 and "in use by another lightctl process" in err  # the daemon runs
    finally:
        await runner.cleanup()
        await daemon.stop()

    with sqlite3.connect(db) as conn:
        after_backup = conn.execute("SELECT COUNT(*) FROM commands").fetchone()[0]
    assert after_backup > report["commands"]
    code, out, err = await lightctl(*base, "restore", str(tmp_path / "b.db"))
    assert code == 0 and "the previous records are kept as" in out, err
    (db.parent / "photos" / "ab12.jpg").unlink()
    code, out, err = await lightctl(*base, "restore", str(tmp_path / "b.db"))
    assert code == 0 and (db.parent / "photos" / "ab12.jpg").exists(), err
    store = Store(db)
    store.open()
    try:
        rows = await store.read("SELECT COUNT(*) AS n FROM commands")
        assert rows[0]["n"] == report["commands"]
    finally:
        store.close()
    kept = [p for p in db.parent.iterdir() if ".before-restore-" in p.name and p.suffix != ".db-wal"]
    assert kept, list(db.parent.iterdir())


async def test_one_daemon_per_database(tmp_path: Path) -> None:
    first = Store(tmp_path / "one.db")
    first.open()
    try:
        with pytest.raises(DatabaseInUse, match=r"in use by another lightctl process \(pid \d+\)"):
            Store(tmp_path / "one.db").open()
    finally:
        first.close()
    second = Store(tmp_path / "one.db")  # free again once the first closed
    second.open()
    second.close()


def test_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    from lightctl.store import StoreError
    from lightctl.store.backup import restore

    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(StoreError):
        restore(bad, tmp_path / "live.db")
    assert not (tmp_path / "live.db").exists()
