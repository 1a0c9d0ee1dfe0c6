"""Benchmark hook: one synthetic two-line DALI gateway per index (see lightctl.bench.runner).

Each gateway has 2 lines of 64 gear in 4 groups of 16, one channel per group; even indexes speak
the WebSocket raw-frame API, odd ones daliserver, so both transports are in every run.
"""

from __future__ import annotations

from typing import Any

LINES = 2
GEAR = 64
GROUPS = 4


def controller_data(index: int) -> dict[str, Any]:
    websocket = index % 2 == 0
    per_group = GEAR // GROUPS
    lines = [
        {
            "line": line,
            "gear": f"0-{GEAR - 1}",
            "groups": {g: f"{g * per_group}-{(g + 1) * per_group - 1}" for g in range(GROUPS)},
        }
        for line in range(1, LINES + 1)
    ]
    return {
        "id": f"dali{index:05d}",
        "protocol": "dali",
        "profile": "lunatone-dali2-iot4" if websocket else "daliserver",
        "gateway": "lunatone-ws" if websocket else "daliserver",
        "host": "127.0.0.1",
        # placeholders; the simulators bind free ports and the config is patched
        "port": 30000 + index if websocket else 20000 + LINES * index,
        "lines": lines,
        "poll_s": 3600,
        "timeout_s": 5.0,
        "channels": [
            {
                "id": f"l{line}g{g}",
                "point": f"{line}/g{g}",
                "luminaires": {"count": 2 * per_group, "kind": "landscape", "led": True, "watts": 18},
            }
            for line in range(1, LINES + 1)
            for g in range(GROUPS)
        ],
    }
