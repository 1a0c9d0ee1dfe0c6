"""The store's repositories that other tests reach only through a daemon on SQLite, through their
own API on both databases (SQLite and the session's PostgreSQL): layers, show runs, readings by
hour, the pruning of roll-ups and inspections, a district's federation outbox and inbox. (Faults,
work orders and notifications: tests/test_faults_workorders.py; users, sessions, tokens and the
audit: tests/test_users_*.py; energy roll-ups and inspections: tests/test_reports_*.py; commands,
migrations, the writer and the store's life: tests/test_store*.py, all on both.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import StoreBackend

from lightctl.model.times import now_ms
from lightctl.model.values import ChannelReading, ControllerReading
from lightctl.store import Store
from lightctl.store.energy import Grain, prune_rollups
from lightctl.store.inspections import prune_inspections

HOUR_MS = 3_600_000


@asynccontextmanager
async def opened(backend: StoreBackend, name: str, **options: Any) -> AsyncIterator[Store]:
    store = Store(backend.target(name), **options)
    await asyncio.to_thread(store.open)
    try:
        yield store
    finally:
        await asyncio.to_thread(store.close)


async def test_overrides_and_curtailments(backend: StoreBackend) -> None:
    async with opened(backend, "layers") as store:
        until = datetime.now(UTC) + timedelta(hours=2)
        first = await store.layers.add(user="张工", kind="override", scene="half", target="*", until=until)
        second = await store.layers.add(user="李工", kind="override", scene="all-on", target="site:ctm", until=None, supersedes=[first])
        shed = [("m1", "c1", 10, 100.0, 0.0, 1500.0), ("m1", "c2", 5, 60.0, 0.0, 400.0)]
        curtail = await store.layers.add(user="调度", kind="curtail", scene="curtail", target="district:d1", until=None, cap=0.0, shed=shed)
        active = await store.layers.active()
        assert [(o.id, o.user, o.scene, o.until) for o in active] == [(second, "李工", "all-on", None), (curtail, "调度", "curtail", None)]
        (curtailment,) = await store.layers.active_curtailments()
        assert (curtailment.id, curtailment.channels, curtailment.luminaires, curtailment.shed_kw) == (curtail, 2, 15, 1.9)
        await store.layers.clear([second, curtail], by="张工")
        assert await store.layers.active() == [] and await store.layers.active_curtailments() == []
        rows = await store.read("SELECT id, cleared_by FROM overrides ORDER BY id")
        assert [(r["id"], r["cleared_by"]) for r in rows] == [(first, "superseded by 李工"), (second, "张工"), (curtail, "张工")]


async def test_show_runs_and_their_cues(backend: StoreBackend) -> None:
    async with opened(backend, "shows") as store:
        run = await store.shows.show_started("confluence", "张工")
        cues = [(0, 0, "m1", "sent", 1.5, None), (0, 1, "m1", "failed", None, "timeout")]
        await store.shows.show_finished(run, "held", 1, cues, "held by an override")
        await store.shows.show_finished(run, "finished", 1, [(0, 1, "m1", "sent", 2.0, None)], None)  # sent on release
        (record,) = await store.shows.recent()
        assert (record.id, record.show_id, record.user, record.status, record.loops_done) == (run, "confluence", "张工", "finished", 1)
        rows = await store.read("SELECT cue, status, sent_offset_ms, error FROM show_cue_results WHERE run_id = ? ORDER BY cue", [run])
        assert [(r["cue"], r["status"], r["sent_offset_ms"], r["error"]) for r in rows] == [(0, "sent", 1.5, None), (1, "sent", 2.0, None)]


async def test_a_controllers_readings_by_hour_across_boundaries_and_limits(backend: StoreBackend) -> None:
    async with opened(backend, "readings") as store:
        base = (now_ms() // HOUR_MS - 5) * HOUR_MS
        for step in range(20):  # every 15 minutes for 5 hours, two controllers interleaved
            at = (base + step * 900_000) / 1000
            for cid, power in (("m1", 100.0 + step), ("m2", 200.0)):
                store.observations.record_reading(cid, ControllerReading(at, {"c1": ChannelReading(on=True, level=100.0)}, power, None))
        await store.flush()
        got = await store.observations.readings("m1", since=base + HOUR_MS - 1, until=base + 3 * HOUR_MS)
        assert [r.power_w for r in got] == [100.0 + s for s in range(4, 13)]  # 01:00 to 03:00 inclusive
        limited = await store.observations.readings("m1", since=base, limit=6)
        assert [r.power_w for r in limited] == [100.0 + s for s in range(6)]
        assert await store.observations.readings("nobody") == []


async def test_old_rollups_and_inspections_are_pruned_oldest_first(backend: StoreBackend) -> None:
    async with opened(backend, "prune") as store:
        def fill(conn: Any) -> None:
            for day in (1, 2, 3):
                conn.execute(
                    "INSERT INTO energy_days (day, controller_id, channel_id, kwh, metered_kwh, peak_kwh, valley_kwh, covered_s)"
                    " VALUES (?,?,?,?,?,?,?,?)", [day * 86_400_000, "m1", "c1", 1.0, 1.0, 0.0, 0.0, 3600.0],
                )
            for at in (10, 20):
                cur = conn.execute("INSERT INTO lighting_inspections (at, instant, source) VALUES (?,?,?)", [at, "21:00", "schedule"])
                conn.execute(
                    "INSERT INTO lighting_inspection_rows (inspection_id, site_id, district_id, region, lighting_class, luminaires,"
                    " should_be_lit, lit, not_reported, faulty) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [cur.lastrowid, "s1", "d1", "main_city", "landscape", 10, 10, 9.5, 0, 0.5],
                )
                conn.execute(
                    "INSERT INTO lighting_inspection_sites (inspection_id, site_id, district_id, region, controllers, online)"
                    " VALUES (?,?,?,?,?,?)", [cur.lastrowid, "s1", "d1", "main_city", 2, 2],
                )

        await store.write(fill)
        assert await store.write(lambda conn: prune_rollups(conn, Grain.DAY, 3 * 86_400_000))
        assert await store.write(lambda conn: prune_rollups(conn, Grain.DAY, 3 * 86_400_000))
        assert not await store.write(lambda conn: prune_rollups(conn, Grain.DAY, 3 * 86_400_000))
        assert [r["day"] for r in await store.read("SELECT day FROM energy_days")] == [3 * 86_400_000]
        assert await store.write(lambda conn: prune_inspections(conn, 15))
        assert not await store.write(lambda conn: prune_inspections(conn, 15))
        assert [r["at"] for r in await store.read("SELECT at FROM lighting_inspections")] == [20]
        assert len(await store.read("SELECT * FROM lighting_inspection_rows")) == 1
        assert len(await store.read("SELECT * FROM lighting_inspection_sites")) == 1


async def test_a_districts_outbox_inbox_and_birth_sequence(backend: StoreBackend) -> None:
    async with opened(backend, "district") as store:
        records = store.federation
        added = await records.outbox_add([(1, "link", "m1", '{"state":"offline"}'), (2, "fault", None, '{"event":"opened"}')])
        assert [e.id for e in added] == sorted(e.id for e in added) and [e.kind for e in added] == ["link", "fault"]
        assert [e.body for e in await records.outbox_after(0)] == ['{"state":"offline"}', '{"event":"opened"}']
        assert await records.outbox_counts() == (2, added[-1].id)
        await records.acknowledge(added[0].id)
        await records.acknowledge(added[0].id)  # again: a mark never goes back, nor fails
        assert await records.acknowledged() == added[0].id
        assert await records.outbox_counts() == (1, added[-1].id)
        assert [await records.next_birth_sequence() for _ in range(3)] == [0, 1, 2]

        assert await records.inbox_claim("7-ab", "scene", '{"scene":"half"}') is None  # new: running
        answer = await records.answer("7-ab", "done", [11, 12], (3, "answer", None, '{"request_id":"7-ab"}'))
        assert answer.id > added[-1].id
        seen = await records.inbox_claim("7-ab", "scene", '{"scene":"half"}')  # the same request again
        assert seen is not None and (seen.status, seen.layer_ids) == ("done", (11, 12))
        assert await records.inbox_layers(["7-ab", "never"]) == {"7-ab": (11, 12)}
        assert await records.inbox_requests_by_layer() == {11: "7-ab", 12: "7-ab"}
