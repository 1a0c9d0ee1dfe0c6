"""Benchmark controllers for ``lightctl bench``: one 8-circuit dimming cabinet per index."""

from __future__ import annotations

from typing import Any

BASE_PORT = 15000


def controller_data(index: int) -> dict[str, Any]:
    """A cabinet-8ch controller; its port is distinct per index (the simulators bind free ports)."""
    return {
        "id": f"mb-{index:05d}",
        "protocol": "modbus",
        "profile": "cabinet-8ch",
        "host": "127.0.0.1",
        "port": BASE_PORT + index,
        "unit": 1,
        "timeout_s": 2.0,
        "poll_s": 3600,
        "channels": [
            {
                "id": f"c{n}",
                "point": n,
                "dimmable": True,
                "luminaires": {"count": 20, "kind": "landscape", "led": True, "watts": 36},
            }
            for n in range(1, 9)
        ],
    }
