"""``lightctl bench store``: what the store's writer sustains, in a temporary database.

* state changes: ``--events`` events of a cabinet whose 8 channels all changed (8 rows each);
* readings: ``--readings`` cabinet readings with the 6 phase figures, then the same with 8
  per-circuit output levels besides (which go to ``reading_values``);
* the one switch's records: ``command started`` then ``command finished`` with ``--controllers``
  results, alone and while as many state-change events arrive at the same moment.

Each figure runs from the first record until a write queued after the last one has committed;
``loop_us`` is what recording costs the event loop's thread per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lightctl.model.values import ChannelReading, ControllerReading
from lightctl.store import ResultRow, Store

CHANNELS = [f"c{n}" for n in range(1, 9)]
PHASES = {
    "voltage_l1_v": 229.8, "voltage_l2_v": 230.4, "voltage_l3_v": 228.9,
    "current_l1_a": 4.1, "current_l2_a": 3.9, "current_l3_a": 4.4,
}
OUTPUTS = {f"output_{ch}_pct": 80.0 for ch in CHANNELS}


async def _barrier(store: Store) -> None:
    await store.flush()


async def _state_changes(store: Store, events: int) -> dict[str, float]:
    changed = {ch: ChannelReading(on=True, level=100.0, power_w=150.0) for ch in CHANNELS}
    now = time.time()
    started = time.perf_counter()
    for n in range(events):
        store.observations.record_state_changes(f"m{n % 1000}", now, changed)
    loop_s = time.perf_counter() - started
    await _barrier(store)
    total = time.perf_counter() - started
    return {"rows": events * len(CHANNELS), "rows_per_s": round(events * len(CHANNELS) / total), "loop_us": round(loop_s / events * 1e6, 2)}


async def _readings(store: Store, count: int, measurements: dict[str, float]) -> dict[str, float]:
    now = time.time()
    readings = [ControllerReading(now + n, {}, 1200.0, 35.5, frozenset(), measurements) for n in range(count)]
    started = time.perf_counter()
    for n, reading in enumerate(readings):
        store.observations.record_reading(f"m{n % 500}", reading)
    loop_s = time.perf_counter() - started
    await _barrier(store)
    total = time.perf_counter() - started
    return {"readings": count, "readings_per_s": round(count / total), "loop_us": round(loop_s / count * 1e6, 2)}


async def _commands(store: Store, controllers: int, rounds: int, events: int) -> dict[str, float]:
    results = [ResultRow(f"m{n}", "confirmed", None, None, 2, 8, 0.05) for n in range(controllers)]
    changed = {ch: ChannelReading(on=True, level=100.0) for ch in CHANNELS}
    started_ms: list[float] = []
    finished_ms: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        command_id = await store.commands.started(user="bench", source="bench", action="override", scene="all-on", target="*")
        t1 = time.perf_counter()
        now = time.time()
        for n in range(events):  # the field's answers arrive while the command completes
            store.observations.record_state_changes(f"m{n}", now, changed)
        await store.commands.finished(command_id, t1 - t0, results)
        finished_ms.append((time.perf_counter() - t1) * 1000)
        started_ms.append((t1 - t0) * 1000)
        await _barrier(store)
    return {
        "started_p50_ms": round(statistics.median(started_ms), 2),
        "finished_p50_ms": round(statistics.median(finished_ms), 2),
        "finished_max_ms": round(max(finished_ms), 2),
    }


async def run_store_bench(args: argparse.Namespace) -> int:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        await asyncio.to_thread(store.open)
        try:
            result["state_changes"] = await _state_changes(store, args.events)
            result["readings_phases"] = await _readings(store, args.readings, PHASES)
            result["readings_phases_outputs"] = await _readings(store, args.readings, {**PHASES, **OUTPUTS})
            result["command_alone"] = await _commands(store, args.controllers, args.rounds, 0)
            result["command_with_state_changes"] = await _commands(store, args.controllers, args.rounds, args.controllers)
            health = store.health()
            result["store"] = {"observations_dropped": health.observations_dropped, "failed_batches": health.failed_batches}
        finally:
            await asyncio.to_thread(store.close)
    if args.json:
        print(json.dumps(result))
    else:
        for name, figures in result.items():
            print(f"{name:28} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    return 0

