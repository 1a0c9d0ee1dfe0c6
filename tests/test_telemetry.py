"""/metrics in the Prometheus text format: commands and their latency, controllers by protocol and
link state, the store's queue and health, readings taken, the last show's cue spread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from conftest import installation_data, modbus_controller, user_with_token, with_endpoints
from prometheus_client.parser import text_string_to_metric_families

from drivers.base import Fault
from lightctl.process.service import start_daemon
from lightctl.resolve.loading import load_config


async def test_metrics_in_the_prometheus_format(make_farm: Any, tmp_path: Path) -> None:
    data = installation_data([modbus_controller(f"p{i}", i) for i in range(3)], api_port=0, database=str(tmp_path / "m.db"))
    data["shows"] = [{"id": "blink", "duration_s": 0.5, "cues": [{"at_s": 0, "rules": [{"target": "*", "level": 40}]}]}]
    farm, _ = await make_farm(data)
    await farm.inject("p2", Fault("offline"))
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(with_endpoints(data, farm.endpoints), ensure_ascii=False), encoding="utf-8")
    daemon, runner = await start_daemon(load_config(path))
    try:
        await daemon.apply_scene("all-on", "*", user="值班员")
        run = await daemon.shows.start("blink", user="导演", clear_overrides=True)
        assert run.task is not None
        await run.task
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 401  # the state is not for anyone: a scraper has a viewer's token
        scraper = {"Authorization": f"Bearer {await user_with_token(daemon, 'prometheus', 'viewer')}"}
        async with aiohttp.ClientSession() as session, session.get(url, headers=scraper) as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=")
            text = await response.text()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
        assert samples[("lightctl_controllers", (("link", "online"), ("protocol", "modbus")))] == 2
        assert samples[("lightctl_controllers", (("link", "offline"), ("protocol", "modbus")))] == 1
        assert samples[("lightctl_commands_total", (("action", "override"), ("outcome", "incomplete"), ("source", "operator")))] == 1
        assert samples[("lightctl_command_seconds_count", (("source", "operator"),))] == 1
        assert samples[("lightctl_controller_results_total", (("status", "confirmed"),))] >= 2
        assert samples[("lightctl_store_healthy", ())] == 1 and ("lightctl_store_queue_depth", ()) in samples
        assert samples[("lightctl_readings_total", ())] >= 1
        assert ("lightctl_show_cue_spread_ms", (("quantile", "0.99"), ("show", "blink"))) in samples
    finally:
        await runner.cleanup()
        await daemon.stop()
