"""daemon.log_format: json gives one JSON event per line, with its context as fields."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from conftest import free_port, installation_data, modbus_controller


async def test_the_daemon_logs_one_json_event_per_line_with_its_context(tmp_path: Path) -> None:
    data = installation_data(
        [modbus_controller("gone", 0, port=free_port())], api_port=0, database=str(tmp_path / "j.db"), log_format="json"
    )
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lightctl", "--config", str(path), "run", stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    events = []
    try:
        async with asyncio.timeout(30):
            while not (
                any(e.get("controller") == "gone" and "offline" in e["message"] for e in events)
                and any("command" in e for e in events)
            ):
                line = await process.stderr.readline()
                assert line, "the daemon ended"
                events.append(json.loads(line))  # every line is one JSON object
    finally:
        os.kill(process.pid, signal.SIGTERM)
        rest, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    events += [json.loads(line) for line in rest.splitlines() if line.strip()] if rest else []
    assert process.returncode == 0
    offline = next(e for e in events if e.get("controller") == "gone")
    assert offline["level"] == "warning" and offline["logger"] == "lightctl.link" and offline["at"].endswith("+08:00")
    command = next(e for e in events if "command" in e)
    assert command["user"] == "lightctl" and command["message"].startswith(f"command #{command['command']} startup")
