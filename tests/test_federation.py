"""1 + N across a real broker (Mosquitto, TLS, a user per district) with the city's records on
PostgreSQL: births, state, the city's one switch and every controller's result, selectors that
only the city can resolve, a district that refuses, fails or is offline."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from drivers.base import Fault
from lightctl.process.mosquitto import Mosquitto
from lightctl.reconcile.outcomes import Status
from lightctl.runtime.commands import CommandRefused
from tests.federation_support import (
    CITY,
    GROUP,
    Federation,
    all_complete,
    eventually,
    node_of,
    start_federation,
)


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    server = Mosquitto(group=GROUP, city=CITY, districts=["d1", "d2", "d3", "d4"], extra_users=["intruder"])
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def federation(make_farm: Any, tmp_path: Path, broker: Mosquitto, postgres: Any) -> AsyncIterator[Federation]:
    city_db = postgres.create_database(f"city_{time.monotonic_ns()}")
    fed = await start_federation(make_farm, tmp_path, broker, city_db, {"d1": 3, "d2": 2})
    try:
        yield fed
    finally:
        await fed.stop()


async def test_births_state_command_and_result_across_the_broker(federation: Federation) -> None:
    city = federation.city
    status = city.status()
    assert set(status["controllers"]) == {"d1-0", "d1-1", "d1-2", "d2-0", "d2-1"}
    assert {c["district"] for c in status["controllers"].values()} == {"d1", "d2"}
    assert status["districts"]["d1"]["complete"] and status["districts"]["d2"]["name"] == "江北"
    assert "half" in {s["id"] for s in city.scenes()}
    await eventually(lambda: city.status()["controllers_online"] == 5, what="every controller online at the city")

    report = await city.apply_scene("half", "*", user="调度员")
    assert report.outcome.count(Status.CONFIRMED) == 5, report.as_json()
    results = {r.controller_id: r for r in await city.store.commands.results(report.command_id)}
    assert set(results) == set(status["controllers"]) and all(r.status == "confirmed" for r in results.values())
    recorded = await city.store.commands.get(report.command_id)
    assert recorded is not None and recorded.user == "调度员" and recorded.confirmed == 5
    # Each district carried it out as a command of its own, audited there with the city's operator.
    for district in ("d1", "d2"):
        commands = await federation.districts[district].store.commands.recent(5)
        assert any(c.user == "调度员 (city)" and c.scene == "half" for c in commands)
    # The state came back as DDATA: the city sees every channel at 50 %.
    await eventually(
        lambda: all(ch.level == 50.0 and ch.on for c in city.mirror.controllers.values() for ch in c.channels.values()),
        what="the city's view at 50 %",
    )
    assert [o["id"] for o in city.status()["overrides"]] == [report.command_id]
    assert set(city.status()["overrides"][0]["districts"]) == {"d1", "d2"}

    # A selector only the city can resolve: each district is sent its own part.
    one = await city.apply_scene("all-off", "district:江北, controller:d1-0", user="调度员")
    assert set(one.outcome.controllers) == {"d2-0", "d2-1", "d1-0"}
    assert all(o.status is Status.CONFIRMED for o in one.outcome.controllers.values())

    # Ending the city's override ends it in every district holding it; the schedule takes over.
    cleared = await city.clear_override(report.command_id, user="调度员")
    assert cleared is not None
    await eventually(lambda: all(o["request"] is None or not o["request"].startswith(f"{report.command_id}-")
                                 for v in city.mirror.districts.values() for o in v.overrides), what="override gone")


async def test_a_district_that_refuses_fails_or_is_offline(federation: Federation) -> None:
    city, farm = federation.city, federation.farm
    # A controller that fails in a district that carries the command out.
    await farm.inject("d1-2", Fault("offline"))
    report = await city.apply_scene("half", "controller:d1-2, district:d2", user="值班员")
    assert report.outcome.controllers["d1-2"].status is Status.FAILED and report.outcome.controllers["d1-2"].error
    assert report.outcome.controllers["d2-0"].status is Status.CONFIRMED
    await farm.clear("d1-2", "offline")

    # A district that refuses: d2 has no such scene; d1 carries it out.
    mixed = await city.apply_scene("d1-only", "*", user="值班员")
    assert {cid: o.status for cid, o in mixed.outcome.controllers.items() if cid.startswith("d1")} == {
        "d1-0": Status.CONFIRMED, "d1-1": Status.CONFIRMED, "d1-2": Status.CONFIRMED}
    for cid in ("d2-0", "d2-1"):
        outcome = mixed.outcome.controllers[cid]
        assert outcome.status is Status.FAILED and outcome.error_kind == "refused" and "unknown scene" in (outcome.error or "")
    with pytest.raises(CommandRefused, match="unknown scene 'nowhere'"):  # no district knows it: refused at the city
        await city.apply_scene("nowhere", "*", user="值班员")

    # A district that fails: its records cannot be written, so its operator's command is not carried out.
    await federation.reborn("d2", store={"busy_timeout_s": 0.1})
    lock = sqlite3.connect(federation.work / "d2.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        failed = await city.apply_scene("all-off", "district:d2", user="值班员")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert {o.error_kind for o in failed.outcome.controllers.values()} == {"failed"}, failed.as_json()
    assert all("could not record" in (o.error or "") for o in failed.outcome.controllers.values())

    # An offline district is reported at once, never waited on, and gets the command when it returns.
    await federation.districts["d2"].stop()
    await eventually(lambda: not city.mirror.districts["d2"].online, what="d2 offline at the city")
    started = time.monotonic()
    held = await city.apply_scene("all-on", "*", user="值班员")
    assert time.monotonic() - started < 5.0
    assert held.outcome.controllers["d2-0"].error_kind == "district_offline"
    assert "delivered when it returns" in (held.outcome.controllers["d2-0"].error or "")
    assert held.outcome.controllers["d1-0"].status is Status.CONFIRMED
    await federation.restart_district("d2")
    await eventually(lambda: all_complete(city, ["d1", "d2"]), what="d2 born again")

    async def amended() -> bool:
        results = {r.controller_id: r.status for r in await city.store.commands.results(held.command_id)}
        return results.get("d2-0") == "confirmed" and results.get("d2-1") == "confirmed"

    await eventually(amended, what="the held command carried out by d2 and its record amended")
    d2 = federation.districts["d2"]
    assert [c.scene for c in await d2.store.commands.recent(10)].count("all-on") == 1
    assert node_of(d2).status()["state"] == "online"
