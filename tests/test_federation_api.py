"""The city daemon serves the district's API from every district's data: the same status, the one
switch, commands, curtailments and the WebSocket; the CLI works against it unchanged; and
``lightctl demo --federated`` starts the whole federation and stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lightctl.process.mosquitto import Mosquitto
from lightctl.runtime.credentials import LocalCredential, write_local_credential
from lightctl.services.access import Permission
from tests.conftest import free_port
from tests.federation_support import CITY, GROUP, Federation, eventually, federated_data, start_federation
from tests.test_cli import lightctl
from tests.users_support import PASSWORD, browser, sign_in
from web.app import bound_port, serve
from web.city import CITY_ROUTES, serve_city
from web.routing import openapi_document

CITY_SECRET = "lcl_city-secret"
DISTRICT_SECRET = "lcl_district-secret"


@pytest.fixture
async def federation(make_farm: Any, tmp_path: Path, postgres: Any) -> AsyncIterator[Federation]:
    broker = Mosquitto(group=GROUP, city=CITY, districts=["d1", "d2"])
    await asyncio.to_thread(broker.start)
    fed = await start_federation(make_farm, tmp_path, broker, postgres.create_database(f"api_{time.monotonic_ns()}"),
                                 {"d1": 2, "d2": 2})
    try:
        yield fed
    finally:
        await fed.stop()
        await asyncio.to_thread(broker.stop)


async def test_the_city_serves_the_districts_api(federation: Federation, tmp_path: Path) -> None:
    city_runner = await serve_city(federation.city, "127.0.0.1", 0, local_credential=CITY_SECRET)
    district_runner = await serve(federation.districts["d1"], "127.0.0.1", 0, local_credential=DISTRICT_SECRET)
    city_url = f"http://127.0.0.1:{bound_port(city_runner)}"
    district_url = f"http://127.0.0.1:{bound_port(district_runner)}"
    auth = {"Authorization": f"Bearer {CITY_SECRET}"}
    district_auth = {"Authorization": f"Bearer {DISTRICT_SECRET}"}
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{city_url}/api/v1/status", headers=auth) as response:
                city_status = await response.json()
            async with session.get(f"{district_url}/api/v1/status", headers=district_auth) as response:
                district_status = await response.json()
            assert set(district_status) <= set(city_status)  # the same answer, and the federation's
            assert set(district_status["controllers"]["d1-0"]) <= set(city_status["controllers"]["d1-0"])
            assert city_status["controllers_total"] == 4 and city_status["federation"]["state"] == "online"
            async with session.ws_connect(f"{city_url}/api/v1/ws", headers=auth) as ws:
                hello = json.loads((await ws.receive()).data)[0]
                assert hello["type"] == "hello" and hello["status"]["controllers_total"] == 4
                async with session.post(f"{city_url}/api/v1/scenes/half/apply", json={"target": "*"}, headers=auth) as response:
                    assert response.status == 200
                    report = await response.json()
                events: list[dict[str, Any]] = []
                while not any(e["type"] == "command" for e in events):
                    events += json.loads((await ws.receive(timeout=10)).data)
                assert {e["type"] for e in events} >= {"command"}
            assert report["summary"] == {"confirmed": 4, "unconfirmed": 0, "failed": 0} and report["user"] == "local"
            async with session.get(f"{city_url}/api/v1/commands/{report['command_id']}", headers=auth) as response:
                command = await response.json()
            assert len(command["results"]) == 4 and command["user"] == "local"
            async with session.post(f"{city_url}/api/v1/scenes/half/apply", json={"target": "site:nowhere"}, headers=auth) as response:
                assert response.status == 400 and "unknown site 'nowhere'" in (await response.json())["error"]
            async with session.post(f"{city_url}/api/v1/scenes/half/apply", json={}) as response:
                assert response.status == 401
            async with session.post(f"{city_url}/api/v1/curtailments", json={"target": "district:d2", "level": 0}, headers=auth) as response:
                curtailed = await response.json()
            assert curtailed["shed"]["channels"] > 0 and curtailed["command"]["summary"]["confirmed"] == 2
            await eventually(lambda: [o for o in federation.city.city_overrides() if o["kind"] == "curtail"], what="curtailment seen")
            async with session.delete(f"{city_url}/api/v1/curtailments/{curtailed['curtailment_id']}", headers=auth) as response:
                assert response.status == 200
            async with session.get(f"{city_url}/api/v1/federation/events?district=d1&kind=command", headers=auth) as response:
                events_d1 = await response.json()
            assert events_d1 and all(e["district"] == "d1" and e["at"].endswith("+08:00") for e in events_d1)
            async with session.get(f"{district_url}/api/v1/federation", headers=district_auth) as response:
                node = await response.json()
            assert node["state"] == "online" and node["node"] == "d1"
            async with session.get(f"{city_url}/status", headers=auth) as response:
                assert "d2-1" in await response.text()
            async with session.get(f"{city_url}/api/v1/sites", headers=auth) as response:
                sites = await response.json()
            assert {d["id"] for d in sites["districts"]} == {"d1", "d2"}
            assert {c["id"] for d in sites["districts"] for s in d["sites"] for c in s["controllers"]} == {"d1-0", "d1-1", "d2-0", "d2-1"}
            async with session.post(f"{city_url}/api/v1/users", json={"name": "li.na", "role": "operator", "password": PASSWORD},
                                    headers=auth) as response:
                assert response.status == 200, await response.text()

        # An operator of the city signs in as on a district; what they change is audited at the city.
        async with browser() as operator:
            csrf = await sign_in(operator, city_url, "li.na")
            async with operator.get(f"{city_url}/") as response:
                assert response.status in (200, 503)  # the console's page (503: not built in this checkout)
            async with operator.post(f"{city_url}/api/v1/scenes/all-on/apply", json={"target": "district:d2"}) as response:
                assert response.status == 403  # no CSRF token
            async with operator.post(f"{city_url}/api/v1/scenes/all-on/apply", json={"target": "district:d2"},
                                     headers={"X-CSRF-Token": csrf}) as response:
                assert response.status == 200
                signed_report = await response.json()
            assert signed_report["user"] == "li.na" and signed_report["summary"]["confirmed"] == 2
            async with operator.get(f"{city_url}/api/v1/audit") as response:
                assert response.status == 403  # an operator does not read the audit
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{city_url}/api/v1/audit?user=li.na", headers=auth) as response:
                audited = await response.json()
            applied = [a for a in audited if a["path"] == "/api/v1/scenes/all-on/apply"]
            assert [a["status"] for a in applied] == [200, 403] and all(a["at"].endswith("+08:00") for a in applied)
            assert any(a["path"] == "/api/v1/session" and a["status"] == 200 for a in audited)
        # the district carried it out in the city operator's name, in its own records
        district_commands = await federation.districts["d2"].store.commands.recent(5)
        assert any(c.user == "li.na (city)" for c in district_commands)

        # The CLI talks to the city as to any daemon.
        config_path = tmp_path / "city.json"
        config_path.write_text(json.dumps({"installation": federation.data["installation"], "daemon": {"database": str(tmp_path / "c.db")}}),
                               encoding="utf-8")
        write_local_credential(tmp_path / "c.db", LocalCredential(CITY_SECRET, city_url))
        code, out, err = await lightctl("--config", str(config_path), "--api", city_url, "scene", "apply", "all-on", "--json")
        assert code == 0, err
        assert json.loads(out)["summary"]["confirmed"] == 4
        code, out, _ = await lightctl("--config", str(config_path), "--api", city_url, "status")
        assert code == 0 and "4/4" in out
    finally:
        await city_runner.cleanup()
        await district_runner.cleanup()


def test_the_citys_routes_are_in_its_openapi_document() -> None:
    document = openapi_document(CITY_ROUTES)
    for route in CITY_ROUTES:
        if route.path.startswith("/api/"):
            operation = document["paths"][route.path][route.method.lower()]
            assert operation["x-permission"] == route.permission.value
            assert ("security" in operation) == (route.permission is not Permission.PUBLIC)


async def test_the_federated_demo_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    data = federated_data({"d1": 2, "d2": 1})
    for district in data["districts"]:
        for site in district["sites"]:
            for controller in site["controllers"]:
                controller["port"] = free_port()
    data["daemon"].update({"api_port": 0, "sim_control_port": 0, "database": str(tmp_path / "var" / "lightctl.db")})
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lightctl", "--config", str(config_path), "demo", "--federated", "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(90):
            while b"City console: " not in (line := await process.stdout.readline()):
                assert line, "the demo ended before it was running"
        assert line.decode().strip() == f"City console: http://127.0.0.1:{port}/"

        async def complete() -> bool:
            code, out, _ = await lightctl("--config", str(config_path), "--api", f"http://127.0.0.1:{port}", "status", "--json")
            return code == 0 and json.loads(out)["controllers_total"] == 3 and all(
                d["complete"] for d in json.loads(out)["districts"].values())

        await eventually(complete, what="both districts complete at the city")
        code, out, err = await lightctl("--config", str(config_path), "scene", "apply", "all-off", "--json")  # the config's port is 0:
        assert code == 0, err  # the city's local credential says where it listens
        code, out, err = await lightctl("--config", str(config_path), "--api", f"http://127.0.0.1:{port}", "scene", "apply", "half", "--json")
        assert code == 0 and json.loads(out)["summary"]["confirmed"] == 3, err
        os.killpg(process.pid, signal.SIGINT)
        async with asyncio.timeout(60):
            rest = await process.stdout.read()
            await process.wait()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    assert process.returncode == 0, rest.decode()
    assert b"Traceback" not in rest, rest.decode()
    for _ in range(50):
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("a process (simulators, Mosquitto) outlived the demo")
