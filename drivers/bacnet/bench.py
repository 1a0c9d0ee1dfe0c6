"""Benchmark hook: one synthetic CBD building per index (see lightctl.bench.runner): eight facade
circuits on Lighting Output objects, commanded at priority 10."""

from __future__ import annotations

from typing import Any

WATTS = (18, 24, 36, 12, 18, 24, 9, 48)


def controller_data(index: int) -> dict[str, Any]:
    return {
        "id": f"bn{index:05d}",
        "protocol": "bacnet",
        "profile": "bms-lighting",
        "device_instance": 20_000 + index,
        # placeholder; the simulators bind free loopback addresses and the config is patched
        "address": f"10.77.{index // 250}.{index % 250 + 1}",
        "poll_s": 3600,
        "timeout_s": 5.0,
        "cov": False,
        "channels": [
            {"id": f"f{n}", "point": n, "luminaires": {"count": 60, "kind": "landscape", "led": True, "watts": WATTS[n - 1]}}
            for n in range(1, 9)
        ],
    }
