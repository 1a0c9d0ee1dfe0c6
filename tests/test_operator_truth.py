"""What an operator must be told (issue 13): a show held back by overrides, a selector that matches
nothing, times in one zone. Against real simulators, through the daemon, the API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import installation_data, modbus_controller, with_endpoints
from test_cli import lightctl

from lightctl.process.service import start_daemon
from lightctl.resolve.loading import load_config
from lightctl.runtime.commands import CommandRefused
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.showrunner import ShowHeld


def data(**daemon: Any) -> dict[str, Any]:
    d = installation_data([modbus_controller(f"o{i}", i, channels=2) for i in range(4)], per_site=2, **daemon)
    d["shows"] = [{"id": "flash", "duration_s": 0.6, "cues": [{"at_s": 0, "rules": [{"target": "*", "level": 70}]}]}]
    return d


async def test_a_show_held_by_an_override_says_what_holds_it(make_farm: Any, tmp_path: Path) -> None:
    _farm, config = await make_farm(data())
    daemon = Daemon(config, database=tmp_path / "held.db")
    await daemon.start()
    try:
        await daemon.apply_scene("all-off", "site:site-0", user="值班员", until=None)
        held = daemon.overrides[-1]
        with pytest.raises(ShowHeld) as refused:
            await daemon.shows.start("flash", user="导演")
        message = str(refused.value)
        assert f"override #{held.id} (all-off) on 'site:site-0' by 值班员, until cleared, holds 4 channel(s)" in message
        assert "o0, o1" in message and "--anyway" in message and "--clear-overrides" in message
        assert refused.value.as_json()["options"] == ["anyway", "clear_overrides"]
        assert daemon.shows.current is None  # nothing started

        run = await daemon.shows.start("flash", user="导演", anyway=True)
        assert run.task is not None
        await run.task
        assert {r.controller_id for r in run.records} == {"o2", "o3"}
        assert [h["id"] for h in run.as_json()["held_back"]] == [held.id]

        await daemon.apply_scene("all-off", "*", user="值班员", until=None)
        whole = daemon.overrides[-1]
        with pytest.raises(ShowHeld, match="would reach none of its 8 channels") as nothing:
            await daemon.shows.start("flash", user="导演", anyway=True)
        assert f"override #{whole.id}" in str(nothing.value)

        run = await daemon.shows.start("flash", user="导演", clear_overrides=True)
        assert run.task is not None
        await run.task
        assert daemon.overrides == [] and {r.controller_id for r in run.records} == {"o0", "o1", "o2", "o3"}
    finally:
        await daemon.stop()


async def test_a_show_under_a_curtailment_to_off_is_refused_and_a_cap_is_reported(make_farm: Any, tmp_path: Path) -> None:
    _farm, config = await make_farm(data())
    daemon = Daemon(config, database=tmp_path / "curtailed.db")
    await daemon.start()
    try:
        report = await daemon.curtail("*", 0, user="调度")
        with pytest.raises(ShowHeld, match=rf"curtailment #{report.override_id} on '\*' \(off\).*curtail restore {report.override_id}"):
            await daemon.shows.start("flash", user="导演", clear_overrides=True)
        await daemon.restore(None, user="调度")
        dimmed = await daemon.curtail("site:site-1", 40, user="调度")
        run = await daemon.shows.start("flash", user="导演")
        assert run.task is not None
        await run.task
        capped = run.as_json()["capped"]
        assert [c["id"] for c in capped] == [dimmed.override_id] and capped[0]["cap"] == 40
    finally:
        await daemon.stop()


async def test_a_selector_that_matches_nothing_is_refused(make_farm: Any, tmp_path: Path) -> None:
    _farm, config = await make_farm(data())
    daemon = Daemon(config, database=tmp_path / "nothing.db")
    await daemon.start()
    try:
        for command in (
            daemon.apply_scene("all-on", "tag:bridge, !tag:bridge", user="值班员"),
            daemon.curtail("tag:bridge, !tag:bridge", 0, user="值班员"),
        ):
            with pytest.raises(CommandRefused, match=r"selector 'tag:bridge, !tag:bridge' matches no channel"):
                await command
        assert daemon.overrides == []
        assert await daemon.store.commands.recent() == [c for c in await daemon.store.commands.recent() if c.action == "reconcile"]
    finally:
        await daemon.stop()


async def test_the_cli_refuses_an_empty_selector_and_a_held_show(make_farm: Any, tmp_path: Path) -> None:
    from tests.conftest import free_port

    raw = data(api_port=free_port(), database=str(tmp_path / "cli.db"))
    farm, _ = await make_farm(raw)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(with_endpoints(raw, farm.endpoints), ensure_ascii=False), encoding="utf-8")
    daemon, runner = await start_daemon(load_config(config_path))
    base = ("--config", str(config_path))
    try:
        code, out, err = await lightctl(*base, "scene", "apply", "all-on", "--target", "tag:bridge, !tag:bridge")
        assert code == 1 and "selector 'tag:bridge, !tag:bridge' matches no channel" in err, (out, err)
        code, out, err = await lightctl(*base, "override", "list")
        assert code == 0 and out.strip() == "no overrides in force"

        code, out, err = await lightctl(*base, "scene", "apply", "all-off", "--target", "site:site-0", "--until", "none")
        assert code == 0, err
        code, out, err = await lightctl(*base, "show", "start", "flash")
        assert code == 1 and "cannot reach 4 of its 8 channels" in err and "--anyway" in err, err
        code, out, err = await lightctl(*base, "show", "start", "flash", "--anyway")
        assert code == 0 and "held back: override #" in out, (out, err)
    finally:
        await runner.cleanup()
        await daemon.stop()


async def test_stopping_a_show_is_quick_and_raises_no_false_offline(make_farm: Any, tmp_path: Path) -> None:
    import time

    from lightctl.model.values import LinkState
    from lightctl.reconcile.outcomes import EngineEvent, LinkEvent

    raw = data()
    raw["shows"] = [{"id": "long", "duration_s": 6.0, "loops": 20, "cues": [
        {"at_s": 0, "rules": [{"target": "*", "level": 70, "fade_s": 3}]},
        {"at_s": 3, "rules": [{"target": "*", "level": 20, "fade_s": 3}]},
    ]}]
    _farm, config = await make_farm(raw)
    daemon = Daemon(config, database=tmp_path / "stop.db")
    await daemon.start()
    offline: list[EngineEvent] = []
    daemon.engine.listeners.append(lambda e: offline.append(e) if isinstance(e, LinkEvent) and e.state is LinkState.OFFLINE else None)
    try:
        await daemon.shows.start("long", user="导演")
        import asyncio

        await asyncio.sleep(1.0)  # mid-fade: the cue's fade runs for two more seconds
        started = time.perf_counter()
        run = await daemon.shows.stop(user="导演")
        took = time.perf_counter() - started
        assert run.status == "stopped"
        assert took < 0.5, f"show stop took {took:.2f} s"
        await asyncio.sleep(3.5)  # the return to the schedule, and any convergence after it
        assert offline == [], offline
        ended = await daemon.store.read("SELECT confirmed, unconfirmed, failed FROM commands WHERE source='show'")
        assert ended == [{"confirmed": 4, "unconfirmed": 0, "failed": 0}], ended
    finally:
        await daemon.stop()
