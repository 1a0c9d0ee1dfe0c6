"""The federation when links fail: the broker down while a district keeps its schedule, a broker
restart, a message lost on the way (rebirth), acknowledgements lost (no event taken twice), and
the broker's ACL refusing a district's publish on another district's topic."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from drivers.base import Fault
from lightctl.federation.mqtt import tls_context
from lightctl.federation.schema import DataType
from lightctl.federation.sparkplug import MessageType, Metric, Payload, Topic, encode
from lightctl.process.mosquitto import Mosquitto
from lightctl.reconcile.outcomes import Status
from tests.federation_support import (
    CITY,
    GROUP,
    Federation,
    all_complete,
    eventually,
    node_of,
    start_federation,
)

DISTRICTS = ["d1", "d2"]


@pytest.fixture
async def broker() -> AsyncIterator[Mosquitto]:
    server = Mosquitto(group=GROUP, city=CITY, districts=DISTRICTS, extra_users=["intruder"])
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def federation(make_farm: Any, tmp_path: Path, broker: Mosquitto, postgres: Any) -> AsyncIterator[Federation]:
    city_db = postgres.create_database(f"city_{time.monotonic_ns()}")
    fed = await start_federation(make_farm, tmp_path, broker, city_db, {"d1": 3, "d2": 2}, resend_after_s=2.0)
    try:
        yield fed
    finally:
        await fed.stop()


async def city_events(federation: Federation, district: str) -> list[dict[str, Any]]:
    rows = await federation.city.store.read(
        "SELECT id, kind, body FROM federation_events WHERE district = ? ORDER BY id", [district]
    )
    return rows


async def _acknowledged(daemon: Any, up_to: int) -> bool:
    return bool(await daemon.store.federation.acknowledged() == up_to)


async def caught_up(federation: Federation, district: str) -> bool:
    """The city has recorded every event of the district's outbox."""
    _, last = await federation.districts[district].store.federation.outbox_counts()
    return (await federation.city.store.federation.received()).get(district, 0) == last > 0


async def test_a_district_keeps_its_schedule_with_the_broker_down_and_sends_what_it_held_in_order_once(
    federation: Federation,
) -> None:
    d1 = federation.districts["d1"]
    await eventually(lambda: caught_up(federation, "d1"), what="the city up to date with d1")
    before = len(await city_events(federation, "d1"))
    _, last_before = await d1.store.federation.outbox_counts()
    assert before == last_before

    await asyncio.to_thread(federation.broker.kill)  # a crash: no goodbye to anyone
    await eventually(lambda: node_of(d1).state != "online", what="d1 knows the broker is gone")
    # The schedule's transitions still switch the field, and are audited at the district.
    dusk = await d1.reconcile("dusk", source="schedule", force=True)
    assert dusk is not None and dusk.outcome.count(Status.CONFIRMED) == 3
    await federation.farm.inject("d1-1", Fault("offline"))
    late = await d1.reconcile("late night", source="schedule", force=True)
    assert late is not None and late.outcome.controllers["d1-1"].status is Status.FAILED

    async def kept() -> list[Any]:  # (the outbox is written a moment after the events)
        events = await d1.store.federation.outbox_after(last_before)
        return events if len(events) >= 3 else []

    held = await eventually(kept, what="what happened kept in d1's outbox")
    assert [e.kind for e in held] == ["command", "link", "command"]
    assert [json.loads(e.body)["target"] for e in held if e.kind == "command"] == ["dusk", "late night"]
    assert set(json.loads(held[2].body)["controllers"]) == {"d1-1"}  # the city is told what went wrong

    await asyncio.to_thread(federation.broker.restart)
    await eventually(lambda: all_complete(federation.city, DISTRICTS), what="every district born again")
    await eventually(lambda: caught_up(federation, "d1"), what="what d1 held recorded at the city")
    events = await city_events(federation, "d1")
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(ids) + 1))  # in order, none missing, none twice
    assert [e["kind"] for e in events[before:]] == ["command", "link", "command"]
    assert [e["body"] for e in events[before:]] == [e.body for e in held]
    await eventually(lambda: _acknowledged(d1, ids[-1]), what="d1 told the city has them all")


async def test_after_a_broker_restart_every_district_is_reborn_and_the_city_sees_all_again(federation: Federation) -> None:
    city = federation.city
    births = {d: city.mirror.districts[d].births for d in DISTRICTS}
    await asyncio.to_thread(federation.broker.restart)
    started = time.monotonic()
    await eventually(lambda: all(city.mirror.districts[d].births > births[d] for d in DISTRICTS), what="rebirths")
    await eventually(lambda: all_complete(city, DISTRICTS), what="the city's view complete")
    await eventually(lambda: city.status()["controllers_online"] == 5, what="every controller online at the city")
    assert time.monotonic() - started < 10.0
    # The one switch works as before.
    report = await city.apply_scene("all-on", "*", user="值班员")
    assert report.outcome.count(Status.CONFIRMED) == 5


def _client(broker: Mosquitto, user: str, identifier: str) -> aiomqtt.Client:
    settings = broker.settings(user)
    return aiomqtt.Client(
        "127.0.0.1", broker.port, username=user, password=broker.passwords[user], identifier=identifier,
        tls_context=tls_context(settings), protocol=aiomqtt.ProtocolVersion.V311,
    )


async def test_a_lost_message_makes_the_city_ask_for_a_rebirth(federation: Federation) -> None:
    city = federation.city
    births = city.mirror.districts["d1"].births
    view = city.mirror.districts["d1"]
    # A DDATA out of turn on d1's own topic (as if the one before it had been lost).
    async with _client(federation.broker, "d1", "d1-replay") as client:
        wrong = ((view.seq or 0) + 100) % 256
        payload = encode(Payload(0, (Metric("Link/State", DataType.String, "online"),), wrong))
        await client.publish(str(Topic(MessageType.DDATA, GROUP, "d1", "d1-0")), payload)
    await eventually(lambda: city.mirror.districts["d1"].births > births, what="d1 reborn on the city's request")
    await eventually(lambda: all_complete(city, ["d1"]), what="d1 complete again")
    assert city.host.dropped >= 1


async def test_events_sent_again_after_lost_acknowledgements_are_taken_once(federation: Federation) -> None:
    d1 = federation.districts["d1"]
    await d1.reconcile("dusk", source="schedule", force=True)
    await eventually(lambda: caught_up(federation, "d1"), what="the city up to date with d1")
    count = len(await city_events(federation, "d1"))
    # d1 stops and forgets every acknowledgement (as if none had reached it): it sends all again.
    births = federation.city.mirror.districts["d1"].births
    await d1.stop()
    await eventually(lambda: not federation.city.mirror.districts["d1"].online, what="d1 offline at the city")
    db = sqlite3.connect(federation.work / "d1.db")
    db.execute("UPDATE federation_marks SET value = 0 WHERE name = 'acknowledged'")
    db.commit()
    db.close()
    d1 = await federation.restart_district("d1")
    await eventually(lambda: federation.city.mirror.districts["d1"].births > births, what="d1 born again")
    await d1.reconcile("night", source="schedule", force=True)

    async def night_recorded() -> bool:
        return any(e["kind"] == "command" and json.loads(e["body"]).get("target") == "night"
                   for e in await city_events(federation, "d1"))

    await eventually(night_recorded, what="the night's command recorded at the city")
    await eventually(lambda: caught_up(federation, "d1"), what="the city up to date with d1 again")
    events = await city_events(federation, "d1")
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) > count  # the copies dropped, the new ones taken
    assert [json.loads(e["body"]).get("target") for e in events if e["kind"] == "command"][-1] == "night"
    await eventually(lambda: _acknowledged(d1, ids[-1]), what="d1 told the city has them all")


async def test_the_acl_refuses_a_district_publishing_on_another_districts_topic(broker: Mosquitto) -> None:
    seen: dict[str, list[str]] = {"city": [], "d1": []}
    async with _client(broker, CITY, "watcher") as city, _client(broker, "d1", "d1-probe") as d1:
        await city.subscribe(f"spBv1.0/{GROUP}/#")
        await d1.subscribe(f"spBv1.0/{GROUP}/NCMD/#")  # granted, but only its own commands are delivered

        async def watch(name: str, client: aiomqtt.Client) -> None:
            async for message in client.messages:
                seen[name].append(str(message.topic))

        watchers = [asyncio.create_task(watch("city", city)), asyncio.create_task(watch("d1", d1))]
        try:
            await d1.publish(str(Topic(MessageType.NDATA, GROUP, "d2")), b"spoof", qos=1)  # another district's topic
            await d1.publish(str(Topic(MessageType.DDATA, GROUP, "d2", "d2-0")), b"spoof", qos=1)
            await d1.publish(str(Topic(MessageType.NCMD, GROUP, "d2")), b"spoof", qos=1)  # a command: the city's alone
            await city.publish(str(Topic(MessageType.NCMD, GROUP, "d2")), b"for d2", qos=1)
            await city.publish(str(Topic(MessageType.NCMD, GROUP, "d1")), b"for d1", qos=1)
            await d1.publish(str(Topic(MessageType.NDATA, GROUP, "d1")), b"own", qos=1)  # its own: delivered
            await eventually(lambda: len(seen["city"]) >= 3 and seen["d1"], timeout=5, what="the allowed messages")
            await asyncio.sleep(0.3)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
    assert sorted(seen["city"]) == sorted(f"spBv1.0/{GROUP}/{t}" for t in ("NCMD/d2", "NCMD/d1", "NDATA/d1"))
    assert seen["d1"] == [f"spBv1.0/{GROUP}/NCMD/d1"]  # d2's command never reached d1
    with pytest.raises(aiomqtt.MqttError):  # no account, no session
        async with aiomqtt.Client("127.0.0.1", broker.port, username="d9", password="x", identifier="d9",
                                  tls_context=tls_context(broker.settings("d1"))):
            pass
