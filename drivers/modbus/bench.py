"""Benchmark hook: one synthetic 8-circuit dimming cabinet per index (see lightctl.bench.runner)."""

from __future__ import annotations

from typing import Any

WATTS = (150, 36, 18, 70, 3, 24, 12, 18)


def controller_data(index: int) -> dict[str, Any]:
    return {
        "id": f"mb{index:05d}",
        "protocol": "modbus",
        "profile": "cabinet-8ch",
        "host": "127.0.0.1",
        "port": 1024 + index,  # placeholder; the simulators bind free ports and the config is patched
        "unit": 1,
        "poll_s": 3600,
        "timeout_s": 5.0,
        "channels": [
            {"id": f"c{n}", "point": n, "luminaires": {"count": 40, "kind": "landscape", "led": True, "watts": WATTS[n - 1]}}
            for n in range(1, 9)
        ],
    }
