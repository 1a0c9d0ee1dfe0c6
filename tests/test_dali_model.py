from __future__ import annotations

import pytest

from drivers.dali import PLUGIN
from drivers.dali.levels import LEVEL_TOLERANCE, arc_to_percent, fade_code, fade_time_s, percent_to_arc
from drivers.dali.model import parse_point, topology
from drivers.registry import get_plugin
from lightctl.config.problems import ConfigError
from lightctl.resolve.loading import config_from_data
from tests.test_dali_common import controller, controller_data


def test_arc_curve_follows_the_standard() -> None:
    assert arc_to_percent(0) == 0.0
    assert arc_to_percent(1) == pytest.approx(0.1)
    assert arc_to_percent(254) == pytest.approx(100.0)
    assert arc_to_percent(170) == pytest.approx(10 ** ((170 - 1) / (253 / 3) - 1))
    assert percent_to_arc(100) == 254 and percent_to_arc(0) == 0 and percent_to_arc(0.0001) == 1
    assert percent_to_arc(50) == 229  # 50 % sits between arc 228 (49.2 %) and 229 (50.5 %)


def test_level_tolerance_is_the_real_round_trip_error() -> None:
    worst = max(abs(arc_to_percent(percent_to_arc(p / 10)) - p / 10) for p in range(1, 1001))
    assert worst <= LEVEL_TOLERANCE
    assert worst > LEVEL_TOLERANCE - 0.1  # not padded: this is the step near full output


def test_fade_codes() -> None:
    assert fade_code(0) == 0 and fade_time_s(0) == 0
    for code in range(1, 16):
        assert fade_code(fade_time_s(code)) == code
    assert fade_time_s(15) == pytest.approx(90.5, abs=0.1)


def test_points() -> None:
    assert str(parse_point("1/g3")) == "1/g3"
    assert parse_point("2/a17").number == 17
    assert parse_point("1/bc").kind == "bc"
    for bad in ("1/g16", "2/a64", "x/g1", "1/b", "3"):
        with pytest.raises(ValueError):
            parse_point(bad)


def test_registry_finds_the_plugin() -> None:
    assert get_plugin("dali") is PLUGIN
    assert "lunatone-dali2-iot4" in PLUGIN.profile_names()


def _problems(data: dict) -> list[str]:
    return [p.message for p in PLUGIN.validate_controller(controller(data))]


def test_validate_controller_finds_each_mistake() -> None:
    data = controller_data(lines=1, gear=16, groups=2)
    assert _problems(data) == []
    data["channels"].append({"id": "x1", "point": "3/g0", "luminaires": data["channels"][0]["luminaires"]})
    data["channels"].append({"id": "x2", "point": "1/a3", "luminaires": data["channels"][0]["luminaires"]})
    data["channels"].append({"id": "x3", "point": "1/a40", "luminaires": data["channels"][0]["luminaires"]})
    data["channels"].append({"id": "x4", "point": "1/g9", "luminaires": data["channels"][0]["luminaires"]})
    data["channels"].append({"id": "x5", "point": "1/g16", "luminaires": data["channels"][0]["luminaires"]})
    data["settings"]["lines"][0]["groups"][20] = "0-1"
    data["settings"]["lines"].append({"line": 5, "gear": "0-70"})
    data["settings"]["ports"] = {7: 1000}
    problems = _problems(data)
    text = "\n".join(problems)
    assert "unknown line 3" in text
    assert "overlaps channel 'l1g0' on gear [3]" in text
    assert "no gear with short address 40" in text
    assert "group 9 has no gear" in text
    assert "group 16 in '1/g16' is out of range" in text
    assert "group 20 is out of range" in text
    assert "lunatone-dali2-iot4 has 4 line(s), not 5" in text
    assert "short addresses 0-63" in text
    assert "port given for undeclared line 7" in text and "daliserver gateways only" in text


def test_config_load_names_file_and_field() -> None:
    data = controller_data(lines=1, gear=8, groups=2)
    data.pop("settings")
    data.update({"gateway": "daliserver", "host": "10.0.0.5", "lines": [{"line": 1, "gear": "0-7", "groups": {0: "0-3", 1: "4-7"}}]})
    data["profile"] = "daliserver"
    tree = {
        "installation": {"name": "两江四岸", "name_en": "Two Rivers", "location": {"lat": 29.56, "lon": 106.58}},
        "districts": [{"id": "yz", "name": "渝中", "name_en": "Yuzhong", "sites": [
            {"id": "s1", "name": "长滨路", "name_en": "Changbin Rd", "location": {"lat": 29.56, "lon": 106.58},
             "controllers": [data]}]}],
    }
    config = config_from_data(tree)
    ctrl = next(iter(config.controllers()))
    assert topology(ctrl)[1].members["l1g1"] == (4, 5, 6, 7)
    data["channels"][1]["point"] = "1/g0"
    with pytest.raises(ConfigError) as info:
        config_from_data(tree)
    assert "channels[1].point" in str(info.value) and "overlaps" in str(info.value)


def test_endpoint_keys_differ_per_gateway() -> None:
    a = controller(controller_data("a", "daliserver"))
    b = controller(controller_data("b", "lunatone-ws"))
    assert PLUGIN.endpoint_key(a) == "127.0.0.1:55825,55826"
    assert PLUGIN.endpoint_key(b) == "127.0.0.1:/"


def test_bench_hook_and_config_yaml_validate() -> None:
    from lightctl.bench.runner import synthetic_config
    from lightctl.resolve.loading import load_config

    config = config_from_data(synthetic_config(["dali"], 4))
    gateways = [c for c in config.controllers()]
    assert {c.settings.gateway for c in gateways} == {"daliserver", "lunatone-ws"}
    assert all(len(topology(c)) == 2 and all(len(t.gear) == 64 for t in topology(c).values()) for c in gateways)
    shipped = [c for c in load_config("config.yaml").controllers() if c.protocol == "dali"]
    assert sum(ch.luminaire_count for c in shipped for ch in c.channels) > 4000
    assert sum(len(c.settings.lines) for c in shipped) == 28
