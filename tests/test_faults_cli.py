"""``lightctl faults`` and ``lightctl workorders`` against a running daemon: the same through the
API, every command with --json, CSV exports, a photo given with feedback, the WebSocket's events."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from conftest import free_port, installation_data, local_secret, modbus_controller, with_endpoints
from test_cli import lightctl
from test_faults_modbus import wait_for

from drivers.base import Fault
from lightctl.process.service import start_daemon
from lightctl.resolve.loading import load_config
from lightctl.runtime.faults import Faults


async def test_faults_and_work_orders_from_the_command_line(make_farm: Any, tmp_path: Path) -> None:
    port = free_port()
    data = installation_data([modbus_controller(f"q{i}", i, channels=2, poll_s=0.5) for i in range(2)], per_site=2,
                             api_port=port, database=str(tmp_path / "q.db"))
    data["faults"] = {"clear_holdoff_s": 1.0, "crews": [{"id": "crew-1", "name": "一班", "members": ["老王"], "districts": ["d1"]}]}
    farm, _ = await make_farm(data)
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(with_endpoints(data, farm.endpoints), ensure_ascii=False), encoding="utf-8")
    daemon, runner = await start_daemon(load_config(path))
    faults = next(s for s in daemon.services if isinstance(s, Faults))
    events: list[dict[str, Any]] = []
    cli = ("--config", str(path))
    try:
        headers = {"Authorization": f"Bearer {local_secret(tmp_path / 'q.db')}"}
        async with aiohttp.ClientSession(headers=headers) as session, session.ws_connect(f"http://127.0.0.1:{port}/api/v1/ws") as ws:
            async def listen() -> None:
                async for message in ws:
                    events.extend(json.loads(message.data))  # a frame is an array of events

            listener = asyncio.ensure_future(listen())
            code, out, _ = await lightctl(*cli, "faults", "list", "--active")
            assert code == 0 and out.strip() == "none"
            await farm.inject("q1", Fault("breaker_trip", "c2"))
            await wait_for(lambda: faults.service.tracker.by_id, 10.0, "the trip")
            code, out, err = await lightctl(*cli, "faults", "list", "--active", "--json")
            assert code == 0, err
            (fault,) = json.loads(out)["faults"]
            assert fault["kind"] == "breaker_trip" and fault["status"] == "unacknowledged" and fault["alarm"]
            assert fault["location"]["channel"]["id"] == "c2" and fault["location"]["lat"] == 29.56
            code, out, _ = await lightctl(*cli, "faults", "list", "--active")
            assert f"#{fault['id']}" in out and "回路跳闸 breaker_trip" in out and "q1/c2" in out and "breaker tripped" in out

            code, out, err = await lightctl(*cli, "faults", "ack", str(fault["id"]), "--note", "已知", "--json")
            assert code == 0, err
            assert json.loads(out)["acknowledged"]["by"] == "local"
            code, out, err = await lightctl(*cli, "faults", "shelve", str(fault["id"]), "--reason", "桥梁维修", "--hours", "2")
            assert code == 0 and "shelved" in out, err
            code, out, _ = await lightctl(*cli, "faults", "shelve", str(fault["id"]), "--reason", " ", "--hours", "2")
            assert code == 1 and out == ""
            code, out, err = await lightctl(*cli, "faults", "unshelve", str(fault["id"]), "--json")
            assert code == 0 and json.loads(out)["status"] == "acknowledged", err

            code, out, err = await lightctl(*cli, "workorders", "file", "--fault", str(fault["id"]), "--json")
            assert code == 0, err
            order = json.loads(out)
            assert order["state"] == "filed" and order["faults"][0]["evidence"] == "breaker tripped"
            oid = str(order["id"])
            code, _, err = await lightctl(*cli, "workorders", "dispatch", oid, "--crew", "nobody")
            assert code == 1 and "unknown crew 'nobody'" in err
            for step in (("dispatch", oid, "--crew", "crew-1"), ("handle", oid, "--note", "到场")):
                code, out, err = await lightctl(*cli, "workorders", *step)
                assert code == 0, err
            photo = tmp_path / "after.jpg"
            photo.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(3_000_000))  # a phone's photo: larger than a JSON body may be
            code, out, err = await lightctl(*cli, "workorders", "feedback", oid, "--note", "更换空开", "--photo", str(photo), "--json")
            assert code == 0, err
            digest = json.loads(out)["steps"][-1]["photo"]
            async with session.get(f"http://127.0.0.1:{port}/api/v1/photos/{digest}") as response:
                assert response.status == 200 and await response.read() == photo.read_bytes()
            code, out, err = await lightctl(*cli, "workorders", "verify", oid)
            assert code == 0, err
            code, _, err = await lightctl(*cli, "workorders", "close", oid)
            assert code == 1 and "still active: closing needs the verifier's reason" in err
            await farm.clear("q1")
            await wait_for(lambda: not faults.service.tracker.by_id, 10.0, "the trip to clear")
            code, out, err = await lightctl(*cli, "workorders", "close", oid, "--json")
            assert code == 0 and json.loads(out)["state"] == "closed", err
            code, out, _ = await lightctl(*cli, "workorders", "list")
            assert f"#{oid}" in out and "closed" in out and "crew crew-1" in out
            code, out, _ = await lightctl(*cli, "workorders", "list", "--open")
            assert out.strip() == "none"

            code, out, err = await lightctl(*cli, "faults", "export")
            rows = list(csv.DictReader(io.StringIO(out)))
            assert code == 0 and [(r["kind"], r["status"]) for r in rows] == [("breaker_trip", "cleared")], err
            target = tmp_path / "wo.csv"
            code, _, err = await lightctl(*cli, "workorders", "export", "-o", str(target))
            (row,) = csv.DictReader(io.StringIO(target.read_text(encoding="utf-8")))
            assert code == 0 and row["state"] == "closed" and row["crew"] == "crew-1" and row["faults"] == str(fault["id"]), err
            code, out, _ = await lightctl(*cli, "faults", "lamps", "--json")
            assert code == 0 and {c["channel"] for c in json.loads(out)["channels"]} == {"c1", "c2"}
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        kinds = [(e["type"], e["event"]) for e in events if e["type"] in ("fault", "workorder")]
        for expected in (("fault", "opened"), ("fault", "acknowledged"), ("fault", "shelved"), ("fault", "cleared"),
                         ("workorder", "filed"), ("workorder", "dispatched"), ("workorder", "handled"), ("workorder", "closed")):
            assert expected in kinds, kinds
    finally:
        await runner.cleanup()
        await daemon.stop()
