"""``lightctl bench soak --hours H``: whole nights in compressed time, with random field faults.

The daemon (engine, supervisors polling, store, services) runs as it always does, in real time,
against simulators in worker processes; only the *schedule's* clock is compressed: the daemon's
clock runs ``--speed`` times faster from 21:45 on, and the harness fires every schedule
transition at its compressed instant (as the schedule runner fires it at its real one), so that
a night of switching happens in minutes. Meanwhile controllers go offline, slow and refusing at
random and come back.

Every compressed hour it samples the process: resident memory, asyncio tasks, open file
descriptors, the store's health; every transition is checked: each controller not carrying an
injected fault must have confirmed its new state within ``GRACE_S`` (else it is a missed
transition). The report gives the samples, their growth after the first hour (the warm-up), and
the daemon's resident memory (this process: the daemon and this harness, which keeps the config's
data for the simulator farm, about 20 MB at 5,000 controllers; the simulators are elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from drivers.base import Fault
from lightctl.bench.runner import bench_protocols, synthetic_config
from lightctl.resolve.loading import config_from_data
from lightctl.runtime.daemon import Daemon
from lightctl.simulation.farm import SimulatorFarm, raise_open_file_limit
from schedules.builder import build as build_schedule

GRACE_S = 8.0
"""Real seconds a controller without an injected fault has to confirm a transition's state."""
FAULT_KINDS = ("offline", "slow", "error")
NIGHT_SCHEDULE: dict[str, Any] = {
    "entries": [
        {"id": "evening", "days": "daily", "start": "sunset", "end": "22:00", "scene": "all-on", "priority": 10},
        {"id": "late", "days": "daily", "start": "22:00", "end": "23:30", "scene": "half", "priority": 10},
        {"id": "night", "days": "daily", "start": "23:30", "end": "sunrise", "scene": "low", "priority": 10},
    ],
}
SCENES = [
    {"id": "half", "rules": [{"target": "*", "level": 50}]},
    {"id": "low", "rules": [{"target": "*", "level": 20}]},
]


@dataclass
class Sample:
    at: str
    rss_mb: float
    tasks: int
    fds: int
    store_healthy: bool
    observations_pending: int


class CompressedClock:
    def __init__(self, start: datetime, speed: float) -> None:
        self.start_s = start.timestamp()
        self.speed = speed
        self.real0 = time.monotonic()

    def __call__(self) -> float:
        return self.start_s + (time.monotonic() - self.real0) * self.speed


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def soak_config(protocols: list[str], count: int) -> dict[str, Any]:
    data = synthetic_config(protocols, count)
    data["scenes"] = SCENES
    data["schedule"] = NIGHT_SCHEDULE
    data["daemon"]["deadline_s"] = 3.0
    for district in data["districts"]:
        for site in district["sites"]:
            for controller in site["controllers"]:
                controller["poll_s"] = 10.0
    return data


async def run_soak_bench(args: argparse.Namespace) -> int:
    raise_open_file_limit()
    protocols = bench_protocols(args.protocol)
    data = soak_config(protocols, args.controllers)
    config = config_from_data(data, source="<soak>")
    zone = ZoneInfo(config.installation.timezone)
    start = datetime.now(zone).replace(hour=21, minute=45, second=0, microsecond=0)  # 22:00 comes in the first hour
    end = start + timedelta(hours=args.hours)
    farm = SimulatorFarm(data, config, processes=args.processes or 2, any_port=True)
    endpoints = await farm.start()
    config = config.with_controller_settings(endpoints)
    rng = random.Random(args.seed)
    controllers = sorted(c.id for c in config.controllers())
    samples: list[Sample] = []
    missed: list[str] = []
    faulted: dict[str, tuple[str, float]] = {}
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        clock = CompressedClock(start, args.speed)
        daemon = Daemon(config, database=Path(tmp) / "soak.db", clock=clock)
        schedule = daemon.schedule = build_schedule(config, daemon.inventory, log_missing=False)  # as `lightctl run` does
        transitions = sorted({t.at for t in schedule.transitions(start, end)})
        try:
            await daemon.start()
            next_sample = start
            next_fault = start
            pending = list(transitions)
            while (now := datetime.fromtimestamp(clock(), zone)) < end:
                if now >= next_sample:
                    gc.collect()
                    health = daemon.store.health()
                    samples.append(Sample(now.strftime("%H:%M"), round(rss_mb(), 1), len(asyncio.all_tasks()),
                                          len(os.listdir("/proc/self/fd")), health.healthy, health.observations_pending))
                    next_sample += timedelta(hours=1)
                if now >= next_fault:
                    await _faults(farm, controllers, faulted, rng, args.fault_share)
                    next_fault += timedelta(minutes=args.fault_every_min)
                if pending and now >= pending[0]:
                    at = pending.pop(0)
                    await daemon.reconcile(f"transition {at:%H:%M}")
                    checked += 1
                    if not await _converged(daemon, faulted):
                        missed.append(f"{at:%H:%M}: {_late(daemon, faulted)}")
                await asyncio.sleep(0.05)
        finally:
            await daemon.stop()
            for cid in list(faulted):
                await farm.clear(cid)
            await farm.stop()
    report = _report(args, samples, checked, missed)
    print(json.dumps(report) if args.json else _text(report))
    return 0 if not missed and report["bounded"] else 1


async def _faults(farm: SimulatorFarm, controllers: list[str], faulted: dict[str, tuple[str, float]], rng: random.Random, share: float) -> None:
    """Clear the faults injected last time, and inject new ones in a random share of controllers."""
    for cid in list(faulted):
        await farm.clear(cid)
        del faulted[cid]
    for cid in rng.sample(controllers, max(1, int(len(controllers) * share))):
        kind = rng.choice(FAULT_KINDS)
        await farm.inject(cid, Fault(kind, value=2.0 if kind == "slow" else None))
        faulted[cid] = (kind, time.monotonic())


async def _converged(daemon: Daemon, faulted: dict[str, tuple[str, float]]) -> bool:
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        if not _late_ids(daemon, faulted):
            return True
        await asyncio.sleep(0.1)
    return False


def _late_ids(daemon: Daemon, faulted: dict[str, tuple[str, float]]) -> list[str]:
    return [cid for cid, rt in daemon.engine.runtimes.items() if cid not in faulted and rt.pending()]


def _late(daemon: Daemon, faulted: dict[str, tuple[str, float]]) -> str:
    late = _late_ids(daemon, faulted)
    return f"{len(late)} controller(s) without a fault still pending, e.g. {', '.join(late[:5])}"


def _report(args: argparse.Namespace, samples: list[Sample], checked: int, missed: list[str]) -> dict[str, Any]:
    warm = samples[1:] if len(samples) > 2 else samples
    growth = {
        "rss_mb": round(warm[-1].rss_mb - warm[0].rss_mb, 1) if warm else 0.0,
        "tasks": warm[-1].tasks - warm[0].tasks if warm else 0,
        "fds": warm[-1].fds - warm[0].fds if warm else 0,
    }
    bounded = growth["rss_mb"] <= max(20.0, 0.1 * (warm[0].rss_mb if warm else 0)) and growth["tasks"] <= 5 and growth["fds"] <= 5
    return {
        "controllers": args.controllers,
        "hours": args.hours,
        "speed": args.speed,
        "transitions": checked,
        "missed_transitions": missed,
        "samples": [s.__dict__ for s in samples],
        "growth_after_first_hour": growth,
        "peak_rss_mb": max((s.rss_mb for s in samples), default=0.0),
        "bounded": bounded,
    }


def _text(r: dict[str, Any]) -> str:
    lines = [f"soak: {r['controllers']} controllers, {r['hours']} compressed hour(s) at x{r['speed']:g}, "
             f"{r['transitions']} transitions, {len(r['missed_transitions'])} missed"]
    lines.append("  time   RSS MB  tasks  fds  store")
    for s in r["samples"]:
        lines.append(f"  {s['at']}  {s['rss_mb']:7.1f}  {s['tasks']:5d}  {s['fds']:4d}  "
                     f"{'ok' if s['store_healthy'] else 'UNHEALTHY'} ({s['observations_pending']} pending)")
    g = r["growth_after_first_hour"]
    lines.append(f"  growth after the first hour: RSS {g['rss_mb']:+.1f} MB, tasks {g['tasks']:+d}, fds {g['fds']:+d} "
                 f"({'bounded' if r['bounded'] else 'GROWING'}); peak RSS {r['peak_rss_mb']:.1f} MB")
    lines += [f"  missed: {m}" for m in r["missed_transitions"]]
    return "\n".join(lines)
