"""Scenes (pure): rule precedence, composition, colour per capability, explain; show config errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lightctl.config.problems import ConfigError
from lightctl.inventory.index import Inventory
from lightctl.model.colour import for_capability, kelvin_to_rgb, parse_colour, rgb_to_kelvin
from lightctl.model.desired import Layer
from lightctl.model.values import ChannelState, Colour
from lightctl.reconcile.explain import explain
from lightctl.resolve.desired import resolve
from scenes.model import SceneBook, UnknownScene
from scenes.shows import compile_show
from tests.conftest import build_config, installation_data, modbus_controller


def data_with(scenes: list[dict[str, Any]], shows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    ctrl_rgb = modbus_controller("rgb", 0, channels=2)
    ctrl_rgb["channels"][0]["luminaires"]["colour"] = "rgb"
    ctrl_rgb["channels"][1]["luminaires"]["colour"] = "cct"
    ctrl_rgb["channels"][1]["tags"] = ["bridge"]
    relay = modbus_controller("relay", 1, channels=3, profile="cabinet-12ch-relay")
    data = installation_data([ctrl_rgb, relay], per_site=1)
    data["scenes"] = scenes
    data["shows"] = shows or []
    return data


def book(data: dict[str, Any]) -> SceneBook:
    config = build_config(data)
    return SceneBook(config.all_scenes(), Inventory(config))


def test_later_rules_win_and_bases_compose() -> None:
    scenes = [
        {"id": "night", "rules": [{"target": "*", "level": 80}, {"target": "controller:relay", "on": False}]},
        {"id": "festival", "base": "night", "rules": [{"target": "channel:relay/c2", "level": 10}]},
    ]
    b = book(data_with(scenes))
    night = b.states("night")
    assert night[("rgb", "c1")] == ChannelState(True, 80.0)
    assert night[("relay", "c1")].on is False
    festival = b.states("festival")
    assert festival[("rgb", "c1")] == night[("rgb", "c1")]
    # A relay-only circuit cannot dim: turned on, it is at full output.
    assert festival[("relay", "c2")] == ChannelState(True, 100.0)
    assert festival[("relay", "c1")].on is False


def test_colour_is_mapped_per_capability() -> None:
    scenes = [{"id": "gold", "rules": [{"target": "*", "level": 60, "colour": "gold"}]},
              {"id": "warm", "rules": [{"target": "*", "colour": {"cct_k": 2700}}]}]
    b = book(data_with(scenes))
    gold = b.states("gold")
    assert gold[("rgb", "c1")].colour == Colour(rgb=(255, 184, 28))
    cct = gold[("rgb", "c2")].colour
    assert cct is not None and cct.rgb is None and cct.cct_k is not None and 1800 <= cct.cct_k <= 3500
    assert gold[("relay", "c1")].colour is None  # no colour: the level only (full, it cannot dim)
    warm = b.states("warm")
    assert warm[("rgb", "c2")].colour == Colour(cct_k=2700)
    assert warm[("rgb", "c1")].colour == Colour(rgb=kelvin_to_rgb(2700))


def test_colour_conversions() -> None:
    assert min(kelvin_to_rgb(6600)) >= 250  # near white
    assert kelvin_to_rgb(2000)[2] < 60  # warm: little blue
    assert rgb_to_kelvin((255, 255, 255)) in range(6000, 6600)
    assert rgb_to_kelvin((255, 0, 0)) < 3000  # red becomes a warm white on tunable-white luminaires
    assert parse_colour("#FF0000") == Colour(rgb=(255, 0, 0))
    assert for_capability(Colour(cct_k=9000), "cct") == Colour(cct_k=6500)
    with pytest.raises(ValueError, match="unknown colour 'mauve'"):
        parse_colour("mauve")


def test_scene_errors_name_file_line() -> None:
    cases = [
        ([{"id": "a", "base": "missing"}], "scenes[0].base: unknown base scene 'missing'"),
        ([{"id": "a", "base": "b"}, {"id": "b", "base": "a"}], "scene bases form a cycle: a -> b -> a"),
        ([{"id": "a", "rules": [{"target": "*", "colour": "mauve"}]}], "scenes[0].rules[0].colour: Value error, unknown colour 'mauve'"),
        ([{"id": "a"}], "a scene needs rules, or a base scene"),
        ([{"id": "a", "rules": [{"target": "tag:nope"}]}], "scenes[0].rules[0].target: unknown tag 'nope'"),
        ([{"id": "handback", "rules": [{"target": "*", "level": 10}]}],
         "scenes[0].id: scene id 'handback' is the built-in hand-back scene; give this scene another id"),
    ]
    for scenes, message in cases:
        with pytest.raises(ConfigError) as info:
            build_config(data_with(scenes))
        assert message in str(info.value), str(info.value)


def test_show_config_errors() -> None:
    good_cue = {"at_s": 0, "scene": "all-on"}
    cases = [
        ({"cues": [{"at_s": 5, "scene": "all-on"}, good_cue]}, "cues must be in time order"),
        ({"cues": [{"at_s": 100, "scene": "all-on"}]}, "must come before the end of the show"),
        ({"cues": [{"at_s": 0, "scene": "nope"}]}, "shows[0].cues[0].scene: unknown scene 'nope'"),
        ({"cues": [{"at_s": 0}]}, "a cue needs either a scene or rules"),
        ({"cues": [good_cue], "schedule_entries": ["nope"]}, "unknown schedule entry 'nope'"),
        ({"cues": [good_cue], "target": "site:nowhere"}, "shows[0].target: unknown site 'nowhere'"),
    ]
    for show, message in cases:
        with pytest.raises(ConfigError) as info:
            build_config(data_with([], [{"id": "s", "duration_s": 60, **show}]))
        assert message in str(info.value), str(info.value)


def test_show_compiles_to_batches_and_accumulates() -> None:
    show = {
        "id": "s", "duration_s": 30, "target": "controller:rgb",
        "cues": [
            {"at_s": 0, "rules": [{"target": "*", "level": 20}]},
            {"at_s": 10, "target": "channel:rgb/c1", "rules": [{"target": "*", "level": 90, "colour": "red"}], "fade_s": 2},
        ],
    }
    data = data_with([], [show])
    config = build_config(data)
    b = SceneBook(config.all_scenes(), Inventory(config))
    compiled = compile_show(config.shows[0], b)
    assert compiled.controllers == {"rgb"}
    first, second = compiled.cues
    assert set(first.batches["rgb"]) == {"c1", "c2"}
    assert second.batches == {"rgb": {"c1": ChannelState(True, 90.0, Colour(rgb=(255, 0, 0)), 2.0)}}
    assert second.accumulated[("rgb", "c2")] == ChannelState(True, 20.0)
    assert compiled.gap_after(0) == 10 and compiled.gap_after(1) == 20
    # A cue's inline rules are no scene an operator can list or apply (issue 13.4).
    assert b.ids() == sorted(config.all_scenes())
    with pytest.raises(UnknownScene, match="unknown scene 's--cue1'"):
        b.get("s--cue1")


def test_an_unknown_scene_suggests_the_closest_name() -> None:
    b = book(data_with([{"id": "night-normal", "rules": [{"target": "*", "level": 60}]}]))
    with pytest.raises(UnknownScene, match=r"unknown scene 'nigth-normal'; did you mean 'night-normal'\?"):
        b.states("nigth-normal")
    with pytest.raises(UnknownScene) as refused:
        b.states("zzz")
    assert "did you mean" not in str(refused.value)


def test_layers_curtailment_caps_above_everything() -> None:
    data = data_with([{"id": "night", "rules": [{"target": "*", "level": 80}]}])
    config = build_config(data)
    inventory = Inventory(config)
    b = SceneBook(config.all_scenes(), inventory)
    layers = [
        Layer("override", "night", "*", "test"),
        Layer("curtail", None, "controller:rgb", "shed", cap=30.0),
        Layer("curtail", None, "channel:relay/c1", "shed", cap=0.0),
    ]
    state, why = resolve(__import__("datetime").datetime.now(), inventory, b, None, layers)
    assert state[("rgb", "c1")] == ChannelState(True, 30.0)
    assert state[("relay", "c1")].on is False
    assert state[("relay", "c2")] == ChannelState(True, 100.0)
    assert "at most 30%" in why[("rgb", "c1")]


def test_explain_lists_the_fewest_operations() -> None:
    b = book(data_with([{"id": "dim", "rules": [{"target": "*", "level": 50}]}]))
    plan = {entry["controller"]: entry for entry in explain(b, "dim")}
    assert [op["kind"] for op in plan["rgb"]["operations"]] == ["write_registers", "write_coils"]
    assert [op["kind"] for op in plan["relay"]["operations"]] == ["write_coils"]
    assert copy.deepcopy(plan) == plan
