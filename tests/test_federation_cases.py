"""Faults and work orders handled at either level without a conflict: one owner per record, the
district. The city lists every district's, and what an operator of the city does to one is carried
out by the district that owns it (real broker, real PostgreSQL for the city, real simulators)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from drivers.base import Fault
from lightctl.process.mosquitto import Mosquitto
from lightctl.runtime.credentials import LocalCredential, write_local_credential
from lightctl.runtime.faults import Faults
from lightctl.runtime.reports import reports_of
from tests.federation_support import CITY, GROUP, Federation, eventually, start_federation
from tests.test_cli import lightctl
from web.app import bound_port
from web.city import serve_city

SECRET = "lcl_city-cases"
FAULTS = {
    "comm_lost_missed": 3, "clear_holdoff_s": 1.0, "convergence_deadline_s": 2.0,
    "crews": [
        {"id": "yuzhong-1", "name": "渝中维护一班", "members": ["wang.jun"], "districts": ["d1"]},
        {"id": "jiangbei-1", "name": "江北维护一班", "members": ["zhang.wei"], "districts": ["d2"]},
    ],
}


@pytest.fixture
async def federation(make_farm: Any, tmp_path: Path, postgres: Any) -> AsyncIterator[Federation]:
    broker = Mosquitto(group=GROUP, city=CITY, districts=["d1", "d2"])
    await asyncio.to_thread(broker.start)
    fed = await start_federation(make_farm, tmp_path, broker, postgres.create_database(f"cases_{time.monotonic_ns()}"),
                                 {"d1": 2, "d2": 1}, extra={"faults": FAULTS}, controller={"poll_s": 0.5})
    try:
        yield fed
    finally:
        await fed.stop()
        await asyncio.to_thread(broker.stop)


def faults_of(fed: Federation, district: str) -> Faults:
    return next(s for s in fed.districts[district].services if isinstance(s, Faults))


async def test_faults_and_work_orders_are_handled_at_either_level_by_the_district_that_owns_them(federation: Federation) -> None:
    fed = federation
    runner = await serve_city(fed.city, "127.0.0.1", 0, local_credential=SECRET)
    url = f"http://127.0.0.1:{bound_port(runner)}"
    auth = {"Authorization": f"Bearer {SECRET}"}
    try:
        await fed.farm.inject("d1-1", Fault("door_open"))
        d1 = faults_of(fed, "d1")
        await eventually(lambda: [r for r in d1.service.tracker.by_id.values() if r.controller_id == "d1-1"], what="the fault in d1")
        (local,) = [r for r in d1.service.tracker.by_id.values() if r.controller_id == "d1-1"]
        city_id = f"d1:{local.id}"
        await eventually(lambda: city_id in fed.city.cases.faults, what="the fault at the city")

        async with aiohttp.ClientSession(headers=auth) as session:
            async with session.get(f"{url}/api/v1/faults?active=1") as response:
                listed = await response.json()
            (fault,) = [f for f in listed["faults"] if f["id"] == city_id]
            assert fault["kind"] == "door_open" and fault["district_id"] == "d1" and fault["local_id"] == local.id
            assert fault["status"] == "unacknowledged" and listed["alarms"] >= 1
            async with session.get(f"{url}/api/v1/crews") as response:
                crews = (await response.json())["crews"]
            assert {(c["id"], c["district"]) for c in crews} == {("yuzhong-1", "d1"), ("jiangbei-1", "d2")}

            # acknowledged at the city: the district's own record says who, from where
            async with session.post(f"{url}/api/v1/faults/{city_id}/ack", json={"note": "seen on the city's wall"}) as response:
                assert response.status == 200, await response.text()
                acked = await response.json()
            assert acked["id"] == city_id and acked["acknowledged"]["by"] == "local (city)"
            assert d1.service.tracker.by_id[local.id].acked_by == "local (city)"

            # a work order filed at the city is the district's; a step taken at the district shows at the city
            async with session.post(f"{url}/api/v1/workorders", json={"faults": [city_id], "note": "please check"}) as response:
                assert response.status == 200, await response.text()
                order = await response.json()
            assert order["id"].startswith("d1:") and order["state"] == "filed" and order["faults"][0]["id"] == city_id
            local_order = int(order["id"].split(":")[1])
            now = int(time.time() * 1000)
            await d1.desk.step(local_order, "dispatch", by="duty officer", now=now, crew="yuzhong-1")
            await d1.desk.step(local_order, "handle", by="wang.jun", now=now + 1)
            await eventually(lambda: fed.city.cases.orders[order["id"]]["state"] == "handling", what="the district's steps at the city")
            # the same step again from the city: the district refuses it, nothing changes
            async with session.post(f"{url}/api/v1/workorders/{order['id']}/handle", json={"note": "on site"}) as response:
                assert response.status == 400
                refused = (await response.json())["error"]
            assert refused.startswith("district d1: ") and "is handling" in refused
            async with session.post(f"{url}/api/v1/workorders/{order['id']}/feedback", json={"note": "door closed, lock replaced"}) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["state"] == "handled"
            orders = await fed.districts["d1"].store.work_orders.query(open_only=True, limit=10)
            assert [(o.id, o.state.value) for o in orders] == [(local_order, "handled")]
            assert [s.person for s in orders[0].steps][-3:] == ["duty officer", "wang.jun", "local (city)"]

            # the CLI talks to the city as to a district, with the city's ids
            config_path = fed.work / "city.json"
            config_path.write_text(json.dumps({"installation": fed.data["installation"], "daemon": {"database": str(fed.work / "c.db")}}),
                                   encoding="utf-8")
            write_local_credential(fed.work / "c.db", LocalCredential(SECRET, url))
            code, out, err = await lightctl("--config", str(config_path), "--api", url, "faults", "list", "--active")
            assert code == 0, err
            assert f"#{city_id}" in out and "door_open" in out
            code, out, err = await lightctl("--config", str(config_path), "--api", url, "workorders", "show", order["id"])
            assert code == 0 and order["id"] in out and "handled" in out, err
            code, out, err = await lightctl("--config", str(config_path), "--api", url, "faults", "ack", "seventeen")
            assert code != 0 and "not a record id" in err

            # the city's work-order figures are those of the district that owns the orders
            async def same_figures() -> bool:
                period = fed.city.reports().period(None, order["due"]["at"][:10])  # to the order's deadline
                ours = (await reports_of(fed.districts["d1"]).reports.workorders(period, "district")).as_json()["rows"]
                theirs = (await fed.city.reports().workorders(period, "district")).as_json()["rows"]
                fed.last_seen = (ours, theirs)  # type: ignore[attr-defined]  # what a failure shows
                mine = [r for r in ours if r["group"] == "d1"]
                return [r for r in theirs if r["group"] == "d1"] == mine and any(r["numerator"] for r in mine)

            await eventually(same_figures, what="the city's work-order figures = d1's (handled on time: 1 of 1)")

            # bad ids and mixed districts are refused by the city, naming what is wrong
            async with session.post(f"{url}/api/v1/faults/17/ack", json={}) as response:
                assert response.status == 400 and "<district>:<number>" in (await response.json())["error"]
            async with session.post(f"{url}/api/v1/workorders", json={"faults": [city_id, "d2:1"]}) as response:
                assert response.status == 400 and "2 districts" in (await response.json())["error"]

            # a district that is offline is said so at once; its records stay its own
            await fed.districts["d2"].stop()
            await eventually(lambda: not fed.city.mirror.districts["d2"].online, what="d2 offline at the city")
            started = time.monotonic()
            async with session.post(f"{url}/api/v1/faults/d2:1/ack", json={}) as response:
                assert response.status == 400 and "offline" in (await response.json())["error"]
            assert time.monotonic() - started < 2.0
    finally:
        await runner.cleanup()
    # a restarted city knows every record from the events it kept
    await fed.city.stop()
    again = type(fed.city)(fed.city.config, store=type(fed.city.store)(fed.city.store.path),
                           password=fed.city.host.password)
    fed.city = again  # the fixture stops it
    fed.districts.pop("d2")  # stopped above
    await again.start()
    assert again.cases.orders[order["id"]]["state"] == "handled"
    assert again.cases.faults[city_id]["acknowledged"]["by"] == "local (city)"
