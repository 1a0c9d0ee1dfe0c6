"""The CLI against a running daemon: scene apply --json, status --json, refusals and exit codes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from drivers.base import Fault
from lightctl.process.service import start_daemon
from lightctl.resolve.loading import load_config
from tests.conftest import free_port, installation_data, local_secret, modbus_controller, with_endpoints


async def lightctl(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lightctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_scene_apply_json_and_status(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    data = installation_data(
        [modbus_controller(f"c{i}", i) for i in range(5)], api_port=port, database=str(tmp_path / "cli.db")
    )
    farm, _ = await make_farm(data)
    await farm.inject("c4", Fault("offline"))
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(with_endpoints(data, farm.endpoints), ensure_ascii=False), encoding="utf-8")
    daemon, runner = await start_daemon(load_config(config_path))
    try:
        code, out, err = await lightctl("--config", str(config_path), "scene", "apply", "all-on", "--target", "site:site-0", "--json")
        result = json.loads(out)
        assert code == 1, out  # one controller failed: not every controller confirmed
        assert result["scene"] == "all-on" and result["target"] == "site:site-0"
        assert isinstance(result["elapsed_s"], float) and result["elapsed_s"] < 5
        assert set(result["controllers"]) == {f"c{i}" for i in range(5)}
        for cid in ("c0", "c1", "c2", "c3"):
            assert result["controllers"][cid]["status"] == "confirmed"
        assert result["controllers"]["c4"]["status"] == "failed"
        assert result["controllers"]["c4"]["error"]

        code, out, _ = await lightctl("--config", str(config_path), "status", "--json")
        status = json.loads(out)
        assert code == 0 and status["controllers_total"] == 5 and status["controllers_online"] == 4
        assert status["overrides"][0]["scene"] == "all-on"

        code, out, err = await lightctl("--config", str(config_path), "scene", "apply", "no-such-scene")
        assert code == 1 and "unknown scene 'no-such-scene'" in err and "Traceback" not in err
        code, out, err = await lightctl("--config", str(config_path), "scene", "apply", "all-on", "--target", "site:atlantis")
        assert code == 1 and "unknown site 'atlantis'" in err

        # the operator's override is listed, and clearing it hands the channels back to the schedule
        override_id = status["overrides"][0]["id"]
        code, out, _ = await lightctl("--config", str(config_path), "override", "list", "--json")
        assert code == 0 and [o["id"] for o in json.loads(out)] == [override_id]
        code, out, _ = await lightctl("--config", str(config_path), "override", "clear", str(override_id))
        assert code == 0 and f"override #{override_id} cleared" in out
        code, out, _ = await lightctl("--config", str(config_path), "status", "--json")
        assert json.loads(out)["overrides"] == []
        code, out, err = await lightctl("--config", str(config_path), "override", "clear", str(override_id))
        assert code == 1 and f"no active override #{override_id}" in err and "Traceback" not in err

        code, out, err = await lightctl("--config", str(config_path), "--url", f"http://127.0.0.1:{free_port()}", "status")
        assert code == 3 and "cannot reach the daemon" in err
        commands = await daemon.store.commands.recent(5)
        assert {c.user for c in commands if c.action == "override"} == {"local"}  # the local credential's caller
    finally:
        await runner.cleanup()
        await daemon.stop()


async def test_requests_need_a_caller(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    data = installation_data([modbus_controller("t0", 0)], api_port=0, database=str(tmp_path / "tok.db"))
    _farm, config = await make_farm(data)
    daemon, runner = await start_daemon(config)
    from web.app import bound_port

    port = bound_port(runner)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/api/v1/scenes/all-on/apply", json={}) as response:
                assert response.status == 401
                assert "sign in first" in (await response.json())["error"]
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            async with session.get(f"http://127.0.0.1:{port}/api/v1/status") as response:
                assert response.status == 401  # reading state needs a caller too
            headers = {"Authorization": f"Bearer {local_secret(tmp_path / 'tok.db')}"}
            async with session.post(f"http://127.0.0.1:{port}/api/v1/scenes/all-on/apply", data="{not json", headers=headers) as response:
                assert response.status == 400 and "not valid JSON" in (await response.json())["error"]
            async with session.post(
                f"http://127.0.0.1:{port}/api/v1/scenes/all-on/apply", json={"until": "yesterday"}, headers=headers
            ) as response:
                assert response.status == 400 and "'until'" in (await response.json())["error"]
            async with session.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", headers=headers) as response:
                spec = await response.json()
            routes = {r.resource.canonical for r in runner.app.router.routes() if r.resource and r.resource.canonical.startswith("/api/")}
            assert routes == set(spec["paths"])
            async with session.get(f"http://127.0.0.1:{port}/", headers=headers) as response:
                page = await response.text()
                assert "controllers online" in page and "t0" in page
            async with session.get(f"http://127.0.0.1:{port}/", allow_redirects=False) as response:
                assert response.status == 401 and "/login?next=%2F" in await response.text()
    finally:
        await runner.cleanup()
        await daemon.stop()


async def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group: the daemon, then the simulators,
    stop in order, with nothing left behind and no traceback."""
    import os
    import signal

    data = installation_data(
        [modbus_controller("d0", 0, port=free_port())], api_port=0, sim_control_port=0, database=str(tmp_path / "demo.db")
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lightctl", "--config", str(config_path), "demo", "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            while b"Console: " not in (line := await process.stdout.readline()):
                assert line, "the demo ended before it was running"
        assert line.decode().strip() == f"Console: http://127.0.0.1:{port}/"  # --port (issue 13.8)
        code, out, _ = await lightctl("--config", str(config_path), "--url", f"http://127.0.0.1:{port}", "status", "--json")
        assert code == 0 and json.loads(out)["controllers_total"] == 1
        os.killpg(process.pid, signal.SIGINT)
        async with asyncio.timeout(30):
            rest = await process.stdout.read()
            await process.wait()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    assert process.returncode == 0, rest.decode()
    assert b"Traceback" not in rest and b"ERROR" not in rest, rest.decode()
    for _ in range(50):
        try:
            os.killpg(process.pid, 0)  # raises once no process of the group is left
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("a simulator process outlived the demo")
