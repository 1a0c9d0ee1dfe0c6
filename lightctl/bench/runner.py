"""``lightctl bench switch``: the one switch through the real engine, against a floor.

N simulated controllers run in separate processes. Each round alternates all-on and all-off:
first through the engine (compile, send, read back, confirm), then the floor: the very same
requests, pre-encoded before the clock starts, sent over plain asyncio sockets to the same
simulators with the same concurrency. Both are timed in the same run, so their ratio is what the
engine costs above the wire and the simulators. Requests per controller are counted at the
simulators.

A protocol takes part by providing ``drivers/<protocol>/bench.py`` with
``controller_data(index: int) -> dict`` (one controller's config mapping).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drivers.base import FloorClient
from drivers.registry import get_plugin, known_protocols
from lightctl.inventory.index import Inventory
from lightctl.loop import settle_heap
from lightctl.model.config import Config
from lightctl.model.values import OFF, ChannelState
from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import EngineSettings, Status
from lightctl.resolve.loading import config_from_data
from lightctl.simulation.farm import SimulatorFarm, raise_open_file_limit

ON = ChannelState(on=True, level=100.0)
CONTROLLERS_PER_SITE = 50


def bench_protocols(choice: str) -> list[str]:
    """``mixed``: every protocol with a benchmark hook; else one protocol or a comma-separated list."""
    if choice != "mixed":
        chosen = sorted({p.strip() for p in choice.split(",") if p.strip()})
        for protocol in chosen:
            get_plugin(protocol)  # raises for an unknown protocol
        return chosen
    available = []
    for protocol in known_protocols():
        try:
            importlib.import_module(f"drivers.{protocol}.bench")
        except ModuleNotFoundError:
            continue
        available.append(protocol)
    return available


def synthetic_config(protocols: Sequence[str], count: int) -> dict[str, Any]:
    """A config of ``count`` controllers, spread round-robin over the protocols."""
    makers = {p: importlib.import_module(f"drivers.{p}.bench").controller_data for p in protocols}
    controllers = [makers[protocols[i % len(protocols)]](i) for i in range(count)]
    sites = [
        {
            "id": f"bench-site-{n:03d}",
            "name": f"基准站点 {n}",
            "name_en": f"Benchmark site {n}",
            "location": {"lat": 29.56, "lon": 106.58},
            "controllers": controllers[start : start + CONTROLLERS_PER_SITE],
        }
        for n, start in enumerate(range(0, count, CONTROLLERS_PER_SITE))
    ]
    return {
        "installation": {"name": "基准", "name_en": "Benchmark", "location": {"lat": 29.56, "lon": 106.58}},
        "daemon": {"concurrency": 2000, "deadline_s": 10.0},
        "districts": [{"id": "bench", "name": "基准区", "name_en": "Bench", "sites": sites}],
    }


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


FLOOR_CONNECT_CONCURRENCY = 200
"""Floor sessions are opened before timing, a few hundred at a time, as a daemon would at start."""


async def _floor_clients(inventory: Inventory, state: ChannelState) -> list[FloorClient]:
    clients: list[FloorClient] = []
    for info in inventory.controllers.values():
        plugin: Any = get_plugin(info.controller.protocol)
        batch = {ch.id: state for ch in info.controller.channels}
        clients.append(plugin.create_floor_client(info.controller, batch))
    sem = asyncio.Semaphore(FLOOR_CONNECT_CONCURRENCY)

    async def connect(client: FloorClient) -> None:
        async with sem:
            await client.connect()

    await asyncio.gather(*(connect(c) for c in clients))
    return clients


async def _floor_round(clients: Sequence[FloorClient], concurrency: int) -> tuple[float, int]:
    sem = asyncio.Semaphore(concurrency)

    async def run(client: FloorClient) -> int:
        async with sem:
            return await client.run()

    started = time.perf_counter()
    sent = await asyncio.gather(*(run(c) for c in clients))
    return time.perf_counter() - started, sum(sent)


@dataclass
class BenchSetUp:
    protocols: list[str]
    farm: SimulatorFarm
    config: Config
    """Patched to reach the running simulators."""
    processes: int
    startup_s: float


async def start_bench(args: argparse.Namespace, with_show: bool = False) -> BenchSetUp | None:
    """N synthetic controllers of the chosen protocols, their simulators started in worker
    processes (one per 500 Modbus-cabinet equivalents, see ``simulator_weight``, at most one per
    core), and the config patched to reach them."""
    raise_open_file_limit()
    protocols = bench_protocols(args.protocol)
    if not protocols:
        print("no protocol in this build has a benchmark hook")
        return None
    count = args.controllers
    data = synthetic_config(protocols, count)
    if with_show:
        data = show_config(data)
    config = config_from_data(data, source="<bench>")
    weight = sum(getattr(get_plugin(p), "simulator_weight", 1.0) for p in protocols) / len(protocols)
    processes = args.processes or max(1, min(os.cpu_count() or 2, math.ceil(count * weight / 500)))
    farm = SimulatorFarm(data, config, processes=processes, any_port=True)
    print(f"starting {count} simulated {'+'.join(protocols)} controllers in {processes} process(es)...", flush=True)
    started = time.perf_counter()
    endpoints = await farm.start()
    return BenchSetUp(protocols, farm, config.with_controller_settings(endpoints), processes, time.perf_counter() - started)


async def run_switch_bench(args: argparse.Namespace) -> int:
    setup = await start_bench(args)
    if setup is None:
        return 2
    protocols, farm, config, processes, startup_s = (
        setup.protocols, setup.farm, setup.config, setup.processes, setup.startup_s
    )
    count = args.controllers
    inventory = Inventory(config)
    settings = EngineSettings(concurrency=config.daemon.concurrency, deadline_s=config.daemon.deadline_s, polling=False)
    engine = Engine(inventory, settings)
    keys = list(inventory.all_keys)
    engine_times: list[float] = []
    floor_times: list[float] = []
    requests_engine: list[float] = []
    requests_floor: list[float] = []
    cpu_engine: list[float] = []
    cpu_simulators: list[float] = []
    not_confirmed = 0
    floors: dict[ChannelState, list[FloorClient]] = {}
    try:
        await engine.start()
        connected = await engine.connect_all(timeout_s=30.0)
        if connected != count:
            print(f"warning: only {connected} of {count} controllers connected")
        for warm in (OFF, ON):  # one untimed round each way: sessions warm, pages faulted in
            engine.set_desired(dict.fromkeys(keys, warm))
            await engine.command(keys)
            floors[warm] = await _floor_clients(inventory, warm)
            await _floor_round(floors[warm], settings.concurrency)
        settle_heap()
        for round_no in range(args.rounds):
            state = ON if round_no % 2 == 0 else OFF
            engine.set_desired(dict.fromkeys(keys, state))
            before = sum((await farm.request_counts()).values())
            sim_cpu = await farm.cpu_seconds()
            cpu = time.process_time()
            outcome = await engine.command(keys)
            cpu_engine.append(time.process_time() - cpu)
            cpu_simulators.append(await farm.cpu_seconds() - sim_cpu)
            after = sum((await farm.request_counts()).values())
            engine_times.append(outcome.elapsed_s)
            requests_engine.append((after - before) / count)
            not_confirmed += len(outcome.controllers) - outcome.count(Status.CONFIRMED)
            floor_s, floor_sent = await _floor_round(floors[state], settings.concurrency)
            floor_times.append(floor_s)
            requests_floor.append(floor_sent / count)
    finally:
        for clients in floors.values():
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        await engine.stop()
        await farm.stop()
    result = summary(protocols, count, processes, startup_s, engine_times, floor_times, requests_engine, requests_floor, not_confirmed)
    result["cpu_ms_per_controller_engine"] = round(percentile(cpu_engine, 50) * 1000 / count, 3)
    result["cpu_ms_per_controller_simulators"] = round(percentile(cpu_simulators, 50) * 1000 / count, 3)
    if args.json:
        print(json.dumps(result))
    else:
        print_summary(result)
    return 0 if not_confirmed == 0 else 1


def summary(
    protocols: Sequence[str],
    count: int,
    processes: int,
    startup_s: float,
    engine_times: Sequence[float],
    floor_times: Sequence[float],
    requests_engine: Sequence[float],
    requests_floor: Sequence[float],
    not_confirmed: int,
) -> dict[str, Any]:
    e50, e95 = percentile(engine_times, 50), percentile(engine_times, 95)
    f50, f95 = percentile(floor_times, 50), percentile(floor_times, 95)
    return {
        "protocols": list(protocols),
        "controllers": count,
        "simulator_processes": processes,
        "simulator_startup_s": round(startup_s, 2),
        "rounds": len(engine_times),
        "engine_p50_s": round(e50, 4),
        "engine_p95_s": round(e95, 4),
        "floor_p50_s": round(f50, 4),
        "floor_p95_s": round(f95, 4),
        "ratio_p50": round(e50 / f50, 2),
        "requests_per_controller_engine": round(statistics.mean(requests_engine), 2),
        "requests_per_controller_floor": round(statistics.mean(requests_floor), 2),
        "not_confirmed": not_confirmed,
    }


def print_summary(r: Mapping[str, Any]) -> None:
    print(
        f"one switch, {r['controllers']} {'+'.join(r['protocols'])} controllers, {r['rounds']} rounds "
        f"(simulators: {r['simulator_processes']} process(es), started in {r['simulator_startup_s']} s)\n"
        f"  engine (apply + read-back + confirm): p50 {r['engine_p50_s']:.3f} s   p95 {r['engine_p95_s']:.3f} s\n"
        f"  floor  (same requests, pre-encoded):  p50 {r['floor_p50_s']:.3f} s   p95 {r['floor_p95_s']:.3f} s\n"
        f"  ratio engine/floor at p50: {r['ratio_p50']:.2f}\n"
        f"  requests per controller: engine {r['requests_per_controller_engine']}, floor {r['requests_per_controller_floor']}\n"
        + (
            f"  CPU per controller and switch (p50): engine {r['cpu_ms_per_controller_engine']} ms, "
            f"simulators {r['cpu_ms_per_controller_simulators']} ms\n"
            if "cpu_ms_per_controller_engine" in r
            else ""
        )
        + f"  controllers not confirmed (all rounds): {r['not_confirmed']}"
    )


SHOW_CUES = 10
SHOW_CUE_GAP_S = 0.6


def show_config(data: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's show: 10 cues alternating levels over every controller."""
    levels = [20, 80, 40, 100, 10, 60, 90, 30, 70, 50]
    data["shows"] = [
        {
            "id": "bench-show",
            "target": "*",
            "duration_s": SHOW_CUES * SHOW_CUE_GAP_S,
            "cues": [{"at_s": i * SHOW_CUE_GAP_S, "rules": [{"target": "*", "level": levels[i]}]} for i in range(SHOW_CUES)],
        }
    ]
    return data


async def run_show_bench(args: argparse.Namespace) -> int:
    """``lightctl bench show``: per cue, the spread between the first and the last controller to
    receive it, measured at the simulators on the system-wide monotonic clock."""
    import tempfile
    from pathlib import Path

    from lightctl.runtime.daemon import Daemon

    setup = await start_bench(args, with_show=True)
    if setup is None:
        return 2
    protocols, farm, config, count = setup.protocols, setup.farm, setup.config, args.controllers
    spreads: list[float] = []
    lateness: list[float] = []
    missing = 0
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(config, database=Path(tmp) / "bench.db")
        try:
            await daemon.start()
            print("daemon started; the show begins", flush=True)
            since = time.monotonic()
            run = await daemon.shows.start("bench-show", user="bench")
            assert run.task is not None
            await run.task
            times = await farm.write_times(since)
        finally:
            await daemon.stop()
            await farm.stop()
    protocol_of = {c.id: c.protocol for c in config.controllers()}
    late_by_protocol: dict[str, list[float]] = {}
    last_by_cue: list[dict[str, float]] = []
    for cue in range(SHOW_CUES):
        beat = run.start_monotonic + cue * SHOW_CUE_GAP_S
        window_end = beat + SHOW_CUE_GAP_S
        arrivals = []
        last: dict[str, float] = {}
        for cid in times:
            inside = [t for t in times[cid] if beat - 0.005 <= t < window_end]
            if inside:
                arrivals.append(min(inside))
                late_by_protocol.setdefault(protocol_of[cid], []).append(min(inside) - beat)
                protocol = protocol_of[cid]
                last[protocol] = max(last.get(protocol, -1.0), min(inside) - beat)
            else:
                missing += 1
        last_by_cue.append(last)
        if arrivals:
            spreads.append(max(arrivals) - min(arrivals))
            lateness.append(max(arrivals) - beat)
    started: dict[int, list[float]] = {}
    started_by_protocol: dict[str, list[float]] = {}
    for record in run.records:
        if record.sent_offset_ms is not None:
            started.setdefault(record.cue, []).append(record.sent_offset_ms)
            started_by_protocol.setdefault(protocol_of[record.controller_id], []).append(record.sent_offset_ms)
    dispatch = [max(offsets) for offsets in started.values()]
    passes = [max(offsets) - min(offsets) for offsets in started.values()]
    result = {
        "protocols": protocols,
        "controllers": count,
        "cues": SHOW_CUES,
        "daemon_last_send_started_p99_ms": round(percentile(dispatch, 99), 1) if dispatch else None,
        "daemon_pass_p99_ms": round(percentile(passes, 99), 1) if passes else None,
        "daemon_send_started_p99_ms_by_protocol": {
            p: round(percentile(v, 99), 1) for p, v in sorted(started_by_protocol.items())
        },
        "spread_p50_ms": round(percentile(spreads, 50) * 1000, 1),
        "spread_p99_ms": round(percentile(spreads, 99) * 1000, 1),
        "spread_max_ms": round(max(spreads) * 1000, 1),
        "last_arrival_after_beat_p99_ms": round(percentile(lateness, 99) * 1000, 1),
        "controller_cues_missing": missing,
        "arrival_after_beat_p99_ms_by_protocol": {
            p: round(percentile(v, 99) * 1000, 1) for p, v in sorted(late_by_protocol.items())
        },
        "spread_ms_by_cue": [round(s * 1000, 1) for s in spreads],
        "daemon_first_send_ms_by_cue": [round(min(started[c]), 1) for c in sorted(started)],
        "daemon_pass_ms_by_cue": [round(max(started[c]) - min(started[c]), 1) for c in sorted(started)],
        "last_arrival_ms_by_cue_and_protocol": [
            {p: round(v * 1000, 1) for p, v in sorted(last.items())} for last in last_by_cue
        ],
        "sent": sum(1 for r in run.records if r.status == "sent"),
        "sends": len(run.records),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"show, {count} {'+'.join(protocols)} controllers, {SHOW_CUES} cues {SHOW_CUE_GAP_S:g} s apart "
            f"(measured at the simulators)\n"
            f"  spread first-to-last controller per cue: p50 {result['spread_p50_ms']} ms, p99 {result['spread_p99_ms']} ms, "
            f"max {result['spread_max_ms']} ms\n"
            f"  spread per cue: {', '.join(f'{v:.0f}' for v in result['spread_ms_by_cue'])} ms\n"
            f"  last arrival after the beat: p99 {result['last_arrival_after_beat_p99_ms']} ms "
            f"(the daemon had started every send by p99 {result['daemon_last_send_started_p99_ms']} ms, "
            f"its pass from first to last send p99 {result['daemon_pass_p99_ms']} ms)\n"
            f"  arrival after the beat, p99 by protocol: "
            + ", ".join(f"{p} {v} ms" for p, v in result["arrival_after_beat_p99_ms_by_protocol"].items())
            + "\n  send started by the daemon after the beat, p99 by protocol: "
            + ", ".join(f"{p} {v} ms" for p, v in result["daemon_send_started_p99_ms_by_protocol"].items())
            + "\n"
            f"  cue sends accepted by the devices: {result['sent']} of {result['sends']}; "
            f"controller-cues not received: {missing}"
        )
    return 0 if missing == 0 else 1
