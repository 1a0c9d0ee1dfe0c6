"""Config files with every kind of mistake: each is named (file, line, field) and never a traceback
(issue 18). The corpus edits the shipped config.yaml; a property test mutates it at random."""

from __future__ import annotations

import copy
import io
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from lightctl.cli.main import main
from lightctl.config.problems import ConfigError
from lightctl.resolve.loading import config_from_data

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")

# (what is wrong, text replaced, replacement, what the message must say)
MISTAKES: list[tuple[str, str, str, str]] = [
    ("YAML syntax", "  timezone: Asia/Shanghai", "  timezone: [Asia/Shanghai", "not valid YAML"),
    ("unknown key", "  deadline_s: 3.0", "  deadline_s: 3.0\n  deadlines: 4", "deadlines: unknown key"),
    ("wrong type", "  concurrency: 500", "  concurrency: many", "daemon.concurrency: "),
    ("out of range", "  api_port: 8650", "  api_port: 99999", "daemon.api_port: "),
    ("unknown time zone", "timezone: Asia/Shanghai", "timezone: Asia/Chongqing-Town", "unknown time zone"),
    ("missing required key", "  name_en: Chongqing Two Rivers Four Banks core-area landscape lighting\n", "", "installation.name_en: required key is missing"),
    ("unknown protocol", "protocol: modbus\n            profile: cabinet-8ch\n            host: 127.0.1.1", "protocol: knx\n            profile: cabinet-8ch\n            host: 127.0.1.1", "unknown protocol 'knx'"),
    ("unknown profile", "profile: cabinet-8ch\n            host: 127.0.1.1", "profile: cabinet-80ch\n            host: 127.0.1.1", "cabinet-80ch"),
    ("bad address", "host: 127.0.1.1\n", "host: 127.0.1.1\n            port: -4\n", "port"),
    ("undeclared tag", "tags: [confluence, show, square]", "tags: [confluence, show, square, nightlife]", "unknown tag 'nightlife'"),
    ("coordinates swapped", "location: {lat: 29.5660, lon: 106.5870}", "location: {lat: 106.5870, lon: 29.5660}", "lat"),
    ("far away", "location: {lat: 29.5660, lon: 106.5870}", "location: {lat: 39.9, lon: 116.4}", "bad coordinate"),
    ("duplicate id", "          - id: ctm-sq-01\n", "          - id: ctm-sq-02\n", "duplicate controller id 'ctm-sq-02'"),
    ("negative count", "count: 256, kind: landscape", "count: -1, kind: landscape", "count"),
    ("unknown luminaire kind", "count: 256, kind: landscape", "count: 256, kind: laser", "kind"),
    ("bad colour", "luminaires: {count: 256, kind: landscape, led: true, watts: 18, colour: rgb}", "luminaires: {count: 256, kind: landscape, led: true, watts: 18, colour: plaid}", "colour"),
]


def _check(text: str, tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--config", str(path), "config", "check"])
    return code, err.getvalue() + out.getvalue()


@pytest.mark.parametrize(("what", "old", "new", "said"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_kind_of_mistake_is_named_with_file_and_line(what: str, old: str, new: str, said: str, tmp_path: Path) -> None:
    assert old in SHIPPED, f"the corpus no longer matches config.yaml: {old!r}"
    code, output = _check(SHIPPED.replace(old, new, 1), tmp_path)
    assert code == 2, output
    assert "Traceback" not in output
    assert said in output, output
    assert re.search(r"config\.yaml:\d+: ", output), output  # the file and the line


def test_an_unreadable_file_and_an_empty_one(tmp_path: Path) -> None:
    code, output = _check("", tmp_path)
    assert code == 2 and "must be a mapping of sections" in output
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--config", str(tmp_path / "nowhere.yaml"), "config", "check"])
    assert code == 2 and "cannot read the file" in err.getvalue()


DATA = YAML(typ="safe").load(SHIPPED)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):  # a few items of each list keep the space small
            out += _paths(value, (*prefix, i))
    return out


PATHS = [p for p in _paths(DATA) if p]
JUNK = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.text(max_size=12), st.booleans(),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(st.just("delete"), JUNK)), min_size=1, max_size=3))
def test_random_damage_is_refused_with_problems_never_a_traceback(edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    data = copy.deepcopy(DATA)
    for path, value in edits:
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        config_from_data(data, source="config.yaml")
    except ConfigError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)
