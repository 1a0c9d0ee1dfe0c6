"""Config: the real config loads; every class of error is named with file, line and field, all at once."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from lightctl.cli.main import main
from lightctl.config.problems import ConfigError
from lightctl.inventory.index import Inventory
from lightctl.inventory.selectors import SelectorError
from lightctl.resolve.loading import load_config
from tests.conftest import ROOT

GOOD = textwrap.dedent(
    """\
    installation:
      name: 测试
      name_en: Test
      location: {lat: 29.56, lon: 106.58}
    tags: [bridge, festival]
    districts:
      - id: yuzhong
        name: 渝中
        name_en: Yuzhong
        sites:
          - id: square
            name: 朝天门广场
            name_en: Chaotianmen Square
            location: {lat: 29.566, lon: 106.587}
            tags: [bridge]
            controllers:
              - id: c1
                protocol: modbus
                profile: cabinet-8ch
                host: 127.0.0.1
                port: 1502
                channels:
                  - {id: a, point: 1, luminaires: {count: 10, kind: landscape, led: true, watts: 20}}
                  - {id: b, point: 2, tags: [festival], luminaires: {count: 5, kind: decoration, led: true, watts: 5}}
            legacy:
              - {id: old, luminaires: {count: 7, kind: street, led: false, watts: 250}}
    scenes:
      - id: half
        rules:
          - {target: "tag:bridge, !kind:decoration", level: 50}
    """
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return [str(p) for p in info.value.problems]


def test_the_shipped_config_is_valid_and_sized_like_the_real_thing() -> None:
    config = load_config(ROOT / "config.yaml")
    inventory = Inventory(config)
    modbus = [c for c in inventory.controllers.values() if c.controller.protocol == "modbus"]
    luminaires = sum(batch.count for batch, *_ in inventory.luminaire_batches())
    assert len(modbus) >= 40
    assert luminaires >= 5000
    assert inventory.legacy, "legacy circuits keep the intelligent-control rate honest"
    assert {"渝中", "江北", "南岸"} <= {d.name for d in config.districts}
    assert inventory.select("district:渝中") == inventory.select("district:yuzhong")


def test_good_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    inventory = Inventory(config)
    assert inventory.select("*") == {("c1", "a"), ("c1", "b")}
    assert inventory.select("tag:bridge, !kind:decoration") == {("c1", "a")}
    assert inventory.select("!tag:festival") == {("c1", "a")}
    assert config.controllers().__next__().settings.port == 1502


def test_each_error_names_file_line_field_and_rule_all_at_once(tmp_path: Path) -> None:
    """Shape errors are all reported together; cross-checks (next test) run once the shapes are right."""
    text = GOOD.replace("port: 1502", "port: 1502\n            poll_s: 0")  # below the minimum
    text = text.replace("lat: 29.566, lon: 106.587", "lat: 106.587, lon: 29.566")  # swapped: out of range
    text = text.replace("count: 5,", "count: -5,")
    problems = problems_of(tmp_path, text)
    joined = "\n".join(problems)
    assert len(problems) == 3, joined
    path = str(tmp_path / "config.yaml")
    assert all(p.startswith(path + ":") for p in problems), joined
    assert re.search(r":14: districts\[0\]\.sites\[0\]\.location\.lat: .*less than or equal to 90", joined), joined
    assert re.search(r":25: .*channels\[1\]\.luminaires\[0\]\.count: .*greater than or equal to 0 \(got -5\)", joined), joined
    assert re.search(r":22: districts\[0\]\.sites\[0\]\.controllers\[0\]\.poll_s: .*greater than or equal to 0.2", joined), joined


def test_duplicates_overlaps_unknown_profile_and_tag(tmp_path: Path) -> None:
    text = GOOD.replace("- {id: b, point: 2,", "- {id: a, point: 1,").replace("tags: [bridge]\n", "tags: [bridge, nightlife]\n")
    problems = "\n".join(problems_of(tmp_path, text))
    assert "duplicate channel id 'a'" in problems
    assert re.search(r"channels\[1\]\.point: .*circuit 1", problems), problems
    assert re.search(r":15: districts\[0\]\.sites\[0\]\.tags\[1\]: unknown tag 'nightlife'", problems), problems

    problems = "\n".join(problems_of(tmp_path, GOOD.replace("cabinet-8ch", "cabinet-99ch")))
    assert re.search(r":19: districts\[0\]\.sites\[0\]\.controllers\[0\]\.profile: .*cabinet-99ch.*cabinet-8ch", problems), problems


def test_duplicate_controller_ids_and_endpoints(tmp_path: Path) -> None:
    block = GOOD.split("        controllers:\n")[1].split("        legacy:")[0]
    text = GOOD.replace(block, block + block)
    problems = "\n".join(problems_of(tmp_path, text))
    assert "duplicate controller id 'c1' (first used at districts[0].sites[0].controllers[0].id)" in problems
    assert "duplicate controller endpoint 'modbus://127.0.0.1:1502/1'" in problems


def test_a_duplicated_controller_id_is_the_only_problem_reported_between_different_hosts(tmp_path: Path) -> None:
    """The second entry must not replace the first before the endpoint check (issue 13.6)."""
    block = GOOD.split("        controllers:\n")[1].split("        legacy:")[0]
    text = GOOD.replace(block, block + block.replace("host: 127.0.0.1", "host: 127.0.0.9"))
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    assert "duplicate controller id 'c1' (first used at districts[0].sites[0].controllers[0].id)" in problems[0]


def test_bad_coordinate_far_away(tmp_path: Path) -> None:
    problems = "\n".join(problems_of(tmp_path, GOOD.replace("lat: 29.566, lon: 106.587", "lat: 39.9, lon: 116.4")))
    assert re.search(r":14: districts\[0\]\.sites\[0\]\.location: bad coordinate: \d+ km", problems), problems


def test_unknown_keys_types_protocols_and_selectors(tmp_path: Path) -> None:
    text = GOOD.replace("  - id: half", "  - id: half\n    colour: red").replace("count: 10,", "count: ten,")
    problems = "\n".join(problems_of(tmp_path, text))
    assert ":29: scenes[0].colour: unknown key" in problems, problems
    assert ":23: districts[0].sites[0].controllers[0].channels[0].luminaires[0].count: Input should be a valid integer" in problems
    # The protocol's own keys are checked by its plugin, all controllers at once.
    block = GOOD.split("        controllers:\n")[1].split("        legacy:")[0]
    second = block.replace("id: c1", "id: c2").replace("port: 1502", "port: 1502\n            unit: 999\n            baud: 9600")
    text = GOOD.replace(block, block + second).replace("protocol: modbus", "protocol: zigbee", 1)
    problems = "\n".join(problems_of(tmp_path, text))
    assert ":18: districts[0].sites[0].controllers[0].protocol: unknown protocol 'zigbee'" in problems, problems
    assert ":30: districts[0].sites[0].controllers[1].unit: Input should be less than or equal to 247 (got 999)" in problems, problems
    assert ":31: districts[0].sites[0].controllers[1].baud: unknown key" in problems, problems
    # Selectors are checked once the shapes are right.
    problems = "\n".join(problems_of(tmp_path, GOOD.replace('target: "tag:bridge, !kind:decoration"', 'target: "site:squar"')))
    assert re.search(r":30: scenes\[0\]\.rules\[0\]\.target: unknown site 'squar'.*did you mean square", problems), problems


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD.replace("name_en: Yuzhong", "name_en: [Yuzhong"))
    assert len(problems) == 1 and "not valid YAML" in problems[0]


def test_selector_grammar() -> None:
    config = load_config(ROOT / "config.yaml")
    inventory = Inventory(config)
    bridges = inventory.select("tag:bridge")
    assert bridges and bridges == inventory.select("tag:bridge, tag:bridge")
    assert inventory.select("*, !tag:bridge") == inventory.all_keys - bridges
    with pytest.raises(SelectorError, match="bad selector term"):
        inventory.select("bridge")
    with pytest.raises(SelectorError, match="empty term"):
        inventory.select("tag:bridge,")


def test_config_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(ROOT / "config.yaml")]) == 0
    assert "valid:" in capsys.readouterr().out
    bad = write(tmp_path, GOOD.replace("cabinet-8ch", "cabinet-99ch"))
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "1 problem in the configuration" in err and "Traceback" not in err
