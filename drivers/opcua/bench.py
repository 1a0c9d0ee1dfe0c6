"""Benchmark hook: one synthetic bridge lighting PLC per index (see lightctl.bench.runner)."""

from __future__ import annotations

from typing import Any

# zone: (luminaires, watts each, colour) — a mid-sized cable-stayed bridge
ZONES = (
    ("deck-upstream", 900, 18, "rgb"),
    ("deck-downstream", 900, 18, "rgb"),
    ("cables", 1100, 12, "rgb"),
    ("piers", 64, 150, "cct"),
    ("towers", 96, 200, "cct"),
    ("underdeck", 240, 36, "none"),
)


def controller_data(index: int) -> dict[str, Any]:
    return {
        "id": f"ua{index:05d}",
        "protocol": "opcua",
        "profile": "bridge-plc",
        "host": "127.0.0.1",
        "port": 30000 + index,  # placeholder; the simulators bind free ports and the config is patched
        "path": f"/lightctl/ua{index:05d}",
        "poll_s": 3600,
        "timeout_s": 5.0,
        "channels": [
            {
                "id": zone,
                "point": zone,
                "luminaires": {"count": count, "kind": "landscape", "led": True, "watts": watts, "colour": colour},
            }
            for zone, count, watts, colour in ZONES
        ],
    }
