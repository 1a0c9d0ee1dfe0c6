"""``lightctl bench report``: a year of 15-minute readings for 500 metered channels through the
store's real writer (roll-ups included), every report over that year, and the one switch over
1,000 simulated controllers with and without that ingest beside it.

* **Ingest**: one reading per channel every 15 minutes for ``--days`` days (500 x 35,040 = 17.5
  million for a year), each a controller's reading with its energy counter, power and its one
  channel's state; a day's readings are made, then recorded (``record_reading``, as the engine's
  listener does) and flushed. The rate is readings ÷ the time from the first record of each day
  to its flush; making the readings (the harness's work, a driver's in the daemon) is timed apart.
  Raw readings are kept (no retention) so that the database's bytes per million readings are
  those of a year of raw readings with their roll-ups; the tables' shares are printed.
* **Reports**: each report of ``lightctl report`` over the whole span, p50 of ``--repeat`` runs
  through the reports' object (what the API calls), the database as ingested.
* **The one switch with ingest**: ``--controllers`` simulated Modbus cabinets driven through the
  daemon (records included, the store being the one ingesting), all-on and all-off in turn,
  ``--rounds`` rounds without ingest, then with a producer recording ``--rate`` readings a second
  on the event loop (as the engine's listener would), then without again; p50 of each.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lightctl.bench.runner import percentile, start_bench
from lightctl.inventory.index import Inventory
from lightctl.loop import settle_heap
from lightctl.model.config import Config
from lightctl.model.values import ChannelReading, ControllerReading
from lightctl.reconcile.outcomes import EngineSettings
from lightctl.resolve.loading import config_from_data
from lightctl.runtime.daemon import Daemon
from lightctl.services.reports.period import Period
from lightctl.services.reports.service import Reports
from lightctl.services.reports.sources import CaseCounts
from lightctl.store import Store
from lightctl.store.inspections import ClassRow, Inspection, SiteRow
from lightctl.store.rollups import RollupModel
from scenes.model import SceneBook
from schedules.builder import build as build_schedule

ZONE = ZoneInfo("Asia/Shanghai")
STEP_S = 900
PER_SITE = 50
GOAL_READINGS_PER_S = 100_000
GOAL_REPORT_MS = 200.0
GOAL_SWITCH_RATIO = 1.2


def meters_config(meters: int) -> dict[str, Any]:
    """``meters`` cabinets of one metered channel each: even ones street lights (half on arterial
    roads), odd ones landscape lights; 50 a site, the sites in two districts, the second western."""
    controllers = []
    for n in range(meters):
        street = n % 2 == 0
        batch: dict[str, Any] = (
            {"count": 10, "kind": "street", "led": True, "watts": 120, **({"road": "arterial"} if n % 4 == 0 else {})}
            if street
            else {"count": 40, "kind": "landscape", "led": True, "watts": 30}
        )
        controllers.append({
            "id": f"meter{n:04d}", "protocol": "modbus", "profile": "cabinet-8ch", "host": "127.0.0.1", "port": 20000 + n // 200,
            "unit": 1 + n % 200, "poll_s": 900, "channels": [{"id": "c1", "point": 1, "dimmable": not street, "luminaires": batch}],
        })
    sites = [
        {"id": f"meter-site-{s:02d}", "name": f"计量站点 {s}", "name_en": f"Metered site {s}", "location": {"lat": 29.56, "lon": 106.58},
         "controllers": controllers[start : start + PER_SITE]}
        for s, start in enumerate(range(0, meters, PER_SITE))
    ]
    half = max(1, len(sites) // 2)
    return {
        "installation": {"name": "计量基准", "name_en": "Metered benchmark", "location": {"lat": 29.56, "lon": 106.58}},
        "districts": [
            {"id": "meters-main", "name": "主城计量", "name_en": "Main city meters", "sites": sites[:half]},
            *([{"id": "meters-west", "name": "渝西计量", "name_en": "Western meters", "region": "western", "sites": sites[half:]}]
              if sites[half:] else []),
        ],
        "scenes": [{"id": "evening", "rules": [{"target": "*", "level": 80}]}],
        "schedule": {"entries": [
            {"id": "street", "days": "daily", "start": "sunset", "end": "sunrise", "scene": "all-on", "target": "kind:street", "priority": 5},
            {"id": "evening", "days": "daily", "start": "19:30", "end": "22:30", "scene": "evening", "priority": 10},
        ]},
        "reports": {"energy": {"tariff": {"periods": [
            {"from": "08:00", "to": "11:00", "period": "peak"}, {"from": "18:00", "to": "23:00", "period": "peak"},
            {"from": "23:00", "to": "07:00", "period": "valley"}]}}},
    }


ON_FULL = {"c1": ChannelReading(on=True, level=100.0)}
ON_EVENING = {"c1": ChannelReading(on=True, level=80.0)}
OFF = {"c1": ChannelReading(on=False, level=0.0)}


class Meters:
    """The channels' levels through a day (street lights 18:00-06:30 at full, landscape lights
    19:30-22:30 at 80%) and each cabinet's counter."""

    def __init__(self, config: Config) -> None:
        self.ids = [c.id for c in config.controllers()]
        self.rated = [c.channels[0].rated_w for c in config.controllers()]
        self.street = [c.channels[0].luminaires[0].kind == "street" for c in config.controllers()]
        self.counters = [0.0] * len(self.ids)

    def day(self, day: date) -> list[tuple[str, ControllerReading]]:
        start = datetime.combine(day, datetime.min.time(), tzinfo=ZONE).timestamp()
        out: list[tuple[str, ControllerReading]] = []
        ids, rated, street, counters = self.ids, self.rated, self.street, self.counters
        for step in range(86_400 // STEP_S):
            minute = step * STEP_S // 60
            street_on = minute < 6 * 60 + 30 or minute >= 18 * 60
            evening = 19 * 60 + 30 <= minute < 22 * 60 + 30
            at = start + step * STEP_S
            for n, cid in enumerate(ids):
                if street[n]:
                    channels, share = (ON_FULL, 1.0) if street_on else (OFF, 0.0)
                else:
                    channels, share = (ON_EVENING, 0.8) if evening else (OFF, 0.0)
                out.append((cid, ControllerReading(at, channels, rated[n] * share, round(counters[n], 4))))
                counters[n] += rated[n] * share * STEP_S / 3.6e6
        return out


async def ingest(store: Store, meters: Meters, first: date, days: int, progress: bool) -> dict[str, float]:
    timed = made = cpu = 0.0
    count = 0
    record = store.observations.record_reading
    for n in range(days):
        started = time.perf_counter()
        readings = meters.day(first + timedelta(days=n))
        made += time.perf_counter() - started
        # The harness's day of readings (48,000 at once, where the daemon has a few buffered) is
        # kept out of the collector's sight while it is ingested, as the daemon keeps its heap
        # built at start (lightctl.loop.settle_heap): the figure is the store's, not the harness's.
        gc.freeze()
        started, cpu_started = time.perf_counter(), time.process_time()
        for controller_id, reading in readings:
            record(controller_id, reading)
        await store.flush()
        timed += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        count += len(readings)
        del readings
        gc.unfreeze()
        if progress and (n + 1) % 30 == 0:
            print(f"  {n + 1} days, {count:,} readings, {count / timed:,.0f} readings/s so far, CPU {cpu / count * 1e6:.2f} µs a reading", flush=True)
    return {
        "readings": count, "ingest_s": round(timed, 2), "readings_per_s": round(count / timed),
        "cpu_us_per_reading": round(cpu / count * 1e6, 2), "making_s": round(made, 2),
    }


def database_bytes(path: Path, readings: int) -> dict[str, Any]:
    """The file's size and each table's share (SQLite's dbstat), read after the store closed."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        by_table = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    finally:
        conn.close()
    total = os.path.getsize(path)
    raw = sum(v for k, v in by_table.items() if k in ("readings", "readings_hour_controller", "reading_values"))
    rollups = sum(v for k, v in by_table.items() if k.startswith("energy_") or k.startswith("sqlite_autoindex_energy"))
    per_million = 1e6 / readings if readings else 0.0
    return {
        "database_bytes": total,
        "bytes_per_million_readings": round(total * per_million),
        "raw_bytes_per_million_readings": round(raw * per_million),
        "rollup_bytes_per_million_readings": round(rollups * per_million),
        "tables_mb": {k: round(v / 1e6, 1) for k, v in sorted(by_table.items(), key=lambda kv: -kv[1]) if v > 1e6},
    }


async def store_inspections(store: Store, config: Config, first: date, days: int) -> None:
    """Two inspections a night, each site's classes as found (what the daemon stores)."""
    inventory = Inventory(config)
    for n in range(days):
        night = first + timedelta(days=n)
        for hour in (19, 22):
            at = round(datetime.combine(night, datetime.min.time(), tzinfo=ZONE).timestamp() * 1000) + hour * 3_600_000
            classes, sites = [], []
            for district in inventory.districts.values():
                for site in district.sites:
                    counts: dict[str, int] = {}
                    for ctrl in site.controllers:
                        batch = ctrl.channels[0].luminaires[0]
                        counts[batch.lighting_class] = counts.get(batch.lighting_class, 0) + batch.count
                    for lighting_class, count in counts.items():
                        classes.append(ClassRow(site.id, district.id, district.region, lighting_class, count, count, count - 1, 0, 1))
                    sites.append(SiteRow(site.id, district.id, district.region, len(site.controllers), len(site.controllers) - 1))
            await store.inspections.add(Inspection(at, f"{hour}:00", "bench", classes, sites))


class BenchCases:
    """Work orders as the faults' records will give them (issue 14 is not merged here): fixed counts."""

    def __init__(self, config: Config) -> None:
        self.counts = [CaseCounts(d.id, None, 40, 2, 35, 33, 36) for d in config.districts]

    async def case_counts(self, start_ms: int, end_ms: int) -> Sequence[CaseCounts]:
        return self.counts


async def time_reports(reports: Reports, first: date, last: date, repeat: int) -> dict[str, float]:
    period = Period(first, last, ZONE)
    month_end = last
    month_start = max(first, last - timedelta(days=30))
    week = Period(max(first, last - timedelta(days=6)), last, ZONE)
    festival = "festival:spring_festival..festival:lantern"
    runs: dict[str, Callable[[], Awaitable[Any]]] = {
        "rates by district": lambda: reports.rates(period, "district"),
        "rates by site": lambda: reports.rates(period, "site"),
        "lighting-on by district": lambda: reports.lighting_on(period, "district"),
        "lighting-on by day": lambda: reports.lighting_on(period, "day"),
        "lighting-on by month": lambda: reports.lighting_on(period, "month"),
        "energy by district": lambda: reports.energy(period, "district"),
        "energy by region": lambda: reports.energy(period, "region"),
        "energy by site": lambda: reports.energy(period, "site"),
        "energy by area": lambda: reports.energy(period, "area"),
        "energy by controller": lambda: reports.energy(period, "controller"),
        "energy by channel": lambda: reports.energy(period, "channel"),
        "energy by day": lambda: reports.energy(period, "day"),
        "energy by month": lambda: reports.energy(period, "month"),
        "energy by district, one district": lambda: reports.energy(period, "district", "meters-main"),
        "energy in the Spring Festival window": lambda: reports.energy(period, "district", None, festival),
        "energy by hour, last 31 days": lambda: reports.energy(Period(month_start, month_end, ZONE), "hour"),
        "energy by 15min, last 7 days": lambda: reports.energy(week, "15min"),
        "forecast 30 nights by district": lambda: _sync(lambda: reports.forecast(last + timedelta(days=1), 30, "district")),
        "workorders by district": lambda: reports.workorders(period, "district"),
        "monthly workbook tables (last month)": lambda: reports.monthly(last.strftime("%Y-%m")),
    }
    out = {}
    for name, run in runs.items():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            await run()
            times.append((time.perf_counter() - started) * 1000)
        out[name] = round(statistics.median(times), 1)
    return out


async def _sync(call: Callable[[], Any]) -> Any:
    return call()


# --------------------------------------------------------------------------- the switch with ingest


async def switch_with_ingest(args: argparse.Namespace, meters_data: dict[str, Any]) -> dict[str, Any] | None:
    bench_args = argparse.Namespace(protocol="modbus", controllers=args.controllers, processes=args.processes)
    setup = await start_bench(bench_args)
    if setup is None:
        return None
    config = setup.config
    model = RollupModel.from_config(config)
    meters_config_ = config_from_data(meters_data, source="<bench meters>")
    model.controllers.update(RollupModel.from_config(meters_config_).controllers)
    meters = Meters(meters_config_)
    # Enough readings for the whole window, made before it (the feeder only records them): each
    # meter's readings go forward in time, as a controller's do.
    needed = args.rate * (args.rounds * (args.pause + 1.0) + 3)
    days = max(1, -(-int(needed) // (len(meters.ids) * 96)))
    readings = [r for day in range(days) for r in meters.day(date(2026, 6, 1) + timedelta(days=day))]
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "switch.db", rollups=model)
        store.commands_first = not args.no_hold
        settings = EngineSettings(concurrency=config.daemon.concurrency, deadline_s=config.daemon.deadline_s, polling=False)
        daemon = Daemon(config, store=store, engine_settings=settings)
        try:
            await daemon.start()
            await daemon.engine.connect_all(timeout_s=30.0)
            scenes = ("all-off", "all-on")
            for scene in scenes:  # warm: sessions, pages
                await daemon.apply_scene(scene, "*", user="bench", until=None)
            settle_heap()
            before = await _rounds(daemon, args.rounds, args.pause)
            fed = _Feeder(store, readings, args.rate)
            task = asyncio.create_task(fed.run())
            await asyncio.sleep(1.0)  # the writer at its pace before the first round
            committed_before = await _committed(store)
            window = time.perf_counter()
            during = await _rounds(daemon, args.rounds, args.pause)
            window = time.perf_counter() - window
            fed.running = False
            await task
            offered = fed.recorded
            await store.flush()
            committed = await _committed(store) - committed_before
            after = await _rounds(daemon, args.rounds, args.pause)
            baseline = statistics.median([*before, *after])
            result = {
                "controllers": args.controllers,
                "rounds": args.rounds,
                "readings_held_during_commands": store.commands_first,
                "switch_p50_s_before": round(percentile(before, 50), 4),
                "switch_p50_s_with_ingest": round(percentile(during, 50), 4),
                "switch_p50_s_after": round(percentile(after, 50), 4),
                "ratio_with_ingest": round(percentile(during, 50) / baseline, 3),
                "offered_readings_per_s": round(offered / fed.elapsed) if fed.elapsed else 0,
                "committed_readings_per_s_during_the_rounds": round(committed / window) if window else 0,
                "readings_recorded": offered,
                "dropped": store.health().observations_dropped,
            }
        finally:
            await daemon.stop()
            await setup.farm.stop()
    return result


async def _committed(store: Store) -> int:
    rows = await store.read("SELECT COALESCE(MAX(id), 0) AS n FROM readings")
    return int(rows[0]["n"])


async def _rounds(daemon: Daemon, rounds: int, pause_s: float) -> list[float]:
    """Each round's whole ``apply_scene``: the override's and the command's records (written
    through the ingesting store) and the engine's send, read-back and confirmation; rounds
    ``pause_s`` apart (an operator's switches are seconds apart, not back to back)."""
    times = []
    for n in range(rounds):
        await asyncio.sleep(pause_s)
        started = time.perf_counter()
        await daemon.apply_scene("all-on" if n % 2 == 0 else "all-off", "*", user="bench", until=None)
        times.append(time.perf_counter() - started)
    return times


class _Feeder:
    """Records readings on the event loop at ``rate`` a second, in slices of 10 ms."""

    SLICE_S = 0.01

    def __init__(self, store: Store, readings: list[tuple[str, ControllerReading]], rate: int) -> None:
        self.store, self.readings, self.rate = store, readings, rate
        self.running = True
        self.recorded = 0
        self.elapsed = 0.0

    async def run(self) -> None:
        record = self.store.observations.record_reading
        per_slice = max(1, round(self.rate * self.SLICE_S))
        started = time.perf_counter()
        index = 0
        total = len(self.readings)
        while self.running and index + per_slice <= total:
            for _ in range(per_slice):
                controller_id, reading = self.readings[index]
                record(controller_id, reading)
                index += 1
            self.recorded += per_slice
            due = started + self.recorded / self.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        self.elapsed = time.perf_counter() - started


# --------------------------------------------------------------------------- the whole


async def run_report_bench(args: argparse.Namespace) -> int:
    data = meters_config(args.meters)
    config = config_from_data(data, source="<bench meters>")
    first = date(2026, 1, 1)
    last = first + timedelta(days=args.days - 1)
    result: dict[str, Any] = {"meters": args.meters, "days": args.days}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "report.db"
        store = Store(path, rollups=RollupModel.from_config(config))
        await asyncio.to_thread(store.open)
        try:
            print(f"ingesting {args.days} days of 15-minute readings for {args.meters} metered channels...", flush=True)
            result["ingest"] = await ingest(store, Meters(config), first, args.days, progress=not args.json)
            result["ingest"]["observations_dropped"] = store.health().observations_dropped
            await store_inspections(store, config, first, args.days)
            inventory = Inventory(config)
            reports = Reports(config, inventory, store, SceneBook(config.all_scenes(), inventory),
                              build_schedule(config, inventory, log_missing=False), cases=BenchCases(config))
            print("timing the reports over the span...", flush=True)
            result["reports_ms_p50"] = await time_reports(reports, first, last, args.repeat)
        finally:
            await asyncio.to_thread(store.close)
        result["storage"] = database_bytes(path, result["ingest"]["readings"])
    if not args.no_switch:
        print(f"the one switch over {args.controllers} simulated cabinets, without and with ingest...", flush=True)
        result["switch"] = await switch_with_ingest(args, meters_config(args.meters))
    result["goals"] = goals(result)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_result(result)
    return 0 if all(result["goals"].values()) else 1


def goals(result: dict[str, Any]) -> dict[str, bool]:
    out = {
        f"ingest >= {GOAL_READINGS_PER_S:,} readings/s": result["ingest"]["readings_per_s"] >= GOAL_READINGS_PER_S,
        f"every report <= {GOAL_REPORT_MS:.0f} ms": max(result["reports_ms_p50"].values()) <= GOAL_REPORT_MS,
    }
    switch = result.get("switch")
    if switch:
        out[f"switch p50 with ingest within {GOAL_SWITCH_RATIO - 1:.0%}"] = switch["ratio_with_ingest"] <= GOAL_SWITCH_RATIO
        out[f"ingest during the switch >= {GOAL_READINGS_PER_S:,} readings/s"] = (
            switch["committed_readings_per_s_during_the_rounds"] >= GOAL_READINGS_PER_S
        )
    return out


def print_result(r: dict[str, Any]) -> None:
    ingest_ = r["ingest"]
    storage = r["storage"]
    print(
        f"ingest: {ingest_['readings']:,} readings of {r['meters']} metered channels over {r['days']} days through the store's writer "
        f"in {ingest_['ingest_s']} s: {ingest_['readings_per_s']:,} readings/s, CPU {ingest_['cpu_us_per_reading']} µs a reading "
        f"(both threads; making them: {ingest_['making_s']} s, apart; dropped: {ingest_['observations_dropped']})"
    )
    print(
        f"database: {storage['database_bytes'] / 1e6:,.0f} MB, {storage['bytes_per_million_readings'] / 1e6:.1f} MB per million readings "
        f"(raw readings {storage['raw_bytes_per_million_readings'] / 1e6:.1f} MB, roll-ups {storage['rollup_bytes_per_million_readings'] / 1e6:.1f} MB); "
        f"tables: {', '.join(f'{k} {v} MB' for k, v in storage['tables_mb'].items())}"
    )
    print("reports over the span (p50):")
    for name, ms in r["reports_ms_p50"].items():
        print(f"  {name:42} {ms:8.1f} ms")
    switch = r.get("switch")
    if switch:
        print(
            f"one switch (apply_scene, records included), {switch['controllers']} Modbus cabinets through the daemon, "
            f"{switch['rounds']} rounds each: p50 "
            f"{switch['switch_p50_s_before']:.3f} s before, {switch['switch_p50_s_with_ingest']:.3f} s with ingest, "
            f"{switch['switch_p50_s_after']:.3f} s after: ratio {switch['ratio_with_ingest']:.2f}\n"
            f"  ingest meanwhile: offered {switch['offered_readings_per_s']:,} readings/s, committed "
            f"{switch['committed_readings_per_s_during_the_rounds']:,} readings/s during the rounds (dropped {switch['dropped']})"
        )
    for goal, met in r["goals"].items():
        print(f"  goal {goal}: {'met' if met else 'NOT met'}")
