"""What the reports' tests share: small installations whose figures are worked out by hand, a
store with the installation's roll-ups, and in-memory sources of faults and work orders (the
shapes the faults' records must provide, lightctl.services.reports.sources)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from conftest import build_config

from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from lightctl.services.reports.service import Reports
from lightctl.services.reports.sources import CaseCounts
from lightctl.store import Store
from lightctl.store.rollups import RollupModel
from scenes.model import SceneBook
from schedules.builder import build

LOCATION = {"lat": 29.56, "lon": 106.58}


def channel(cid: str, count: int, kind: str, *, led: bool = True, watts: float = 100.0, road: str | None = None,
            dimmable: bool = True) -> dict[str, Any]:
    batch: dict[str, Any] = {"count": count, "kind": kind, "led": led, "watts": watts}
    if road is not None:
        batch["road"] = road
    return {"id": cid, "point": int(cid[1:]), "dimmable": dimmable, "luminaires": batch}


def controller(cid: str, channels: list[dict[str, Any]], *, port: int = 1502, poll_s: float = 3600) -> dict[str, Any]:
    return {"id": cid, "protocol": "modbus", "profile": "cabinet-8ch", "host": "127.0.0.1", "port": port, "unit": 1,
            "timeout_s": 0.5, "poll_s": poll_s, "channels": channels}


def site(sid: str, controllers: list[dict[str, Any]], legacy: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": sid, "name": f"站点 {sid}", "name_en": f"Site {sid}", "location": LOCATION, "controllers": controllers,
            "legacy": legacy or []}


def installation(districts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "installation": {"name": "测试", "name_en": "Test", "location": LOCATION},
        "daemon": {"deadline_s": 2.0, "concurrency": 200},
        "districts": districts,
        **extra,
    }


def two_regions() -> dict[str, Any]:
    """d1 (main city): m1 with 10 LED street lights on an arterial road (100 W), 20 non-LED street
    lights on another road (250 W), 30 LED landscape lights (20 W), and a legacy time-clock circuit
    of 40 non-LED street lights; d2 (western): m2 with 50 LED street lights and 10 LED decorations."""
    return installation(
        [
            {"id": "d1", "name": "渝中", "name_en": "Yuzhong", "sites": [site(
                "s1",
                [controller("m1", [channel("c1", 10, "street", road="arterial"), channel("c2", 20, "street", led=False, watts=250),
                                   channel("c3", 30, "landscape", watts=20)])],
                legacy=[{"id": "old-1", "luminaires": {"count": 40, "kind": "street", "led": False, "watts": 250}}],
            )]},
            {"id": "d2", "name": "永川", "name_en": "Yongchuan", "region": "western", "sites": [site(
                "s2", [controller("m2", [channel("c1", 50, "street"), channel("c2", 10, "decoration", watts=10)], port=1503)],
            )]},
        ]
    )


@asynccontextmanager
async def store_for(path: Path | str, config: Config, **options: Any) -> AsyncIterator[Store]:
    store = Store(path, rollups=RollupModel.from_config(config), **options)
    await asyncio.to_thread(store.open)
    try:
        yield store
    finally:
        await asyncio.to_thread(store.close)


def reports_for(config: Config, store: Store, *, with_schedule: bool = False, cases: Any = None, faults: Any = None) -> Reports:
    inventory = Inventory(config)
    schedule = build(config, inventory, log_missing=False) if with_schedule else None
    return Reports(config, inventory, store, SceneBook(config.all_scenes(), inventory), schedule, cases=cases, faults=faults)


class InMemoryCases:
    """A CaseSource over fixed counts (what the work orders' records will answer)."""

    def __init__(self, counts: Sequence[CaseCounts]) -> None:
        self.counts = list(counts)
        self.asked: list[tuple[int, int]] = []

    async def case_counts(self, start_ms: int, end_ms: int) -> Sequence[CaseCounts]:
        self.asked.append((start_ms, end_ms))
        return self.counts


class InMemoryFaults:
    """A FaultSource over fixed counts of luminaires out of service per channel."""

    def __init__(self, faulty: Mapping[tuple[str, str], float]) -> None:
        self.faulty = dict(faulty)

    async def faulty_luminaires(self, at_ms: int) -> Mapping[tuple[str, str], float]:
        return self.faulty


def config_of(data: dict[str, Any]) -> Config:
    return build_config(data)


def by_key(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]
