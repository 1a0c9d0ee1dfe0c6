"""``lightctl dali scan`` and ``lightctl dali store-scenes`` against a simulator in its own thread."""

from __future__ import annotations

import argparse
import asyncio
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from drivers.base import Fault
from drivers.dali.levels import percent_to_arc
from drivers.dali.sim import DaliSimulatorHost
from lightctl.cli import dali as cli
from lightctl.resolve.loading import load_config
from tests.test_dali_common import controller, controller_data


def _config_tree(ctrl_data: dict) -> dict:
    channels = {ch["id"] for ch in ctrl_data["channels"]}
    rules = [{"target": "*", "on": True, "level": 100}]
    if "l1g2" in channels:
        rules += [
            {"target": "channel:cbl-gw1/l1g1", "level": 40},
            {"target": "channel:cbl-gw1/l1g2", "on": False, "level": 0},
        ]
    flat = {k: v for k, v in ctrl_data.items() if k != "settings"} | ctrl_data["settings"]
    return {
        "installation": {"name": "两江四岸", "name_en": "Two Rivers", "location": {"lat": 29.56, "lon": 106.58}},
        "tags": ["embankment"],
        "districts": [{"id": "yz", "name": "渝中", "name_en": "Yuzhong", "sites": [
            {"id": "cbl", "name": "长滨路", "name_en": "Changbin Road", "location": {"lat": 29.56, "lon": 106.586},
             "tags": ["embankment"], "controllers": [flat]}]}],
        "scenes": [{"id": "night", "rules": rules}],
    }


@contextmanager
def simulator_thread(ctrl_data: dict) -> Iterator[tuple[DaliSimulatorHost, dict]]:
    """The simulator runs on its own loop in a thread, so the CLI can call asyncio.run itself."""
    loop = asyncio.new_event_loop()
    host = DaliSimulatorHost([controller(ctrl_data)], any_port=True, timing=False)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(host.start(), loop).result(5)
        patched = dict(ctrl_data)
        patched["settings"] = dict(ctrl_data["settings"]) | dict(host.endpoints()[ctrl_data["id"]])
        yield host, patched
    finally:
        asyncio.run_coroutine_threadsafe(host.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightctl")
    cli.register(parser.add_subparsers(dest="command"))
    return parser


def _run(argv: list[str]) -> tuple[int, str, str]:
    args = _parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = args.func(args)
    return code, out.getvalue(), err.getvalue()


def test_scan_lists_the_gear_with_a_progress_bar(tmp_path: Path) -> None:
    data = controller_data("cbl-gw1", "daliserver", lines=2, gear=8, groups=2, scenes={0: "night"})
    data["settings"]["lines"][1]["gear"] = "0-5,9"
    data["settings"]["lines"][1]["groups"] = {0: "0-3", 1: "4-5,9"}
    with simulator_thread(data) as (host, patched):
        path = tmp_path / "config.yaml"
        YAML().dump(_config_tree(patched), path)
        host.inject("cbl-gw1", Fault("lamp_failure", channel="l2g1", value=0.3))
        code, out, err = _run(["dali", "scan", "cbl-gw1", "--line", "2", "--config", str(path)])
    assert code == 0, err
    assert "cbl-gw1 line 2 [################################] 64/64" in err
    rows = [line.split() for line in out.splitlines()[1:-1]]
    assert [int(r[1]) for r in rows] == [0, 1, 2, 3, 4, 5, 9]
    assert rows[0] == ["2", "0", "LED", "0", "0.0%", "100.0%", "ok"]
    assert rows[4][-1] == "FAILED" and rows[5][-1] == "ok"
    assert out.splitlines()[-1] == "7 gear found on cbl-gw1 line(s) 2"


def test_scan_json_and_unknown_line(tmp_path: Path) -> None:
    data = controller_data("cbl-gw1", "daliserver", lines=1, gear=4, groups=2)
    with simulator_thread(data) as (_host, patched):
        path = tmp_path / "config.yaml"
        YAML().dump(_config_tree(patched), path)
        code, out, _ = _run(["dali", "scan", "cbl-gw1", "--json", "--config", str(path)])
        assert code == 0
        assert '"groups": [\n   1\n  ]' in out and out.count('"address"') == 4
        code, _, err = _run(["dali", "scan", "cbl-gw1", "--line", "3", "--config", str(path)])
        assert code == 2 and "has no line 3" in err


def test_store_scenes_writes_the_configured_scene(tmp_path: Path) -> None:
    data = controller_data("cbl-gw1", "daliserver", lines=1, gear=16, groups=4, scenes={3: "night"})
    with simulator_thread(data) as (host, patched):
        path = tmp_path / "config.yaml"
        YAML().dump(_config_tree(patched), path)
        code, out, err = _run(["dali", "store-scenes", "--config", str(path)])
        assert code == 0, err
        assert out.startswith("cbl-gw1: stored scenes 3=night in ")
        gear = host.gateway("cbl-gw1").lines[1].gear
        assert [gear[a].scenes[3] for a in (0, 4, 8, 12)] == [254, percent_to_arc(40), 0, 254]
        assert all(g.scenes[0] == 255 for g in gear.values())
    config = load_config(path)
    assert next(iter(config.controllers())).settings.scenes == {3: "night"}


def test_cli_refuses_a_controller_it_does_not_know(tmp_path: Path) -> None:
    data = controller_data("cbl-gw1", "daliserver", lines=1, gear=4, groups=2)
    path = tmp_path / "config.yaml"
    YAML().dump(_config_tree(data), path)
    with pytest.raises(SystemExit, match="no controller 'nope'"):
        _run(["dali", "scan", "nope", "--config", str(path)])


def test_store_scenes_names_an_unknown_scene(tmp_path: Path) -> None:
    data = controller_data("cbl-gw1", "daliserver", lines=1, gear=4, groups=2, scenes={1: "no-such-scene"})
    path = tmp_path / "config.yaml"
    YAML().dump(_config_tree(data), path)
    code, _, err = _run(["dali", "store-scenes", "--config", str(path)])
    assert code == 1 and "no-such-scene" in err


def test_the_root_config_option_reaches_the_dali_commands(tmp_path: Path) -> None:
    from lightctl.cli.main import main

    data = controller_data("cbl-gw1", "daliserver", lines=1, gear=4, groups=2)
    path = tmp_path / "other.yaml"
    YAML().dump(_config_tree(data), path)
    with pytest.raises(SystemExit, match="no controller 'nope'"):
        main(["--config", str(path), "dali", "scan", "nope"])
