"""Profiles as data, controller validation against them, settings, and the floor client."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML
from test_modbus_driver import ON, controller, every, make_rig

from drivers.base import ConfigProblem
from drivers.modbus import PLUGIN
from drivers.modbus.profile import PROFILE_DIR, ProfileError, load_profile, profiles
from drivers.modbus.settings import ModbusSettings
from lightctl.model.values import OFF


def test_shipped_profiles() -> None:
    assert list(PLUGIN.profile_names()) == ["cabinet-12ch-relay", "cabinet-8ch"]
    eight, twelve = profiles()["cabinet-8ch"], profiles()["cabinet-12ch-relay"]
    assert eight.dimmable == list(range(1, 9)) and eight.word_order == "big"
    assert twelve.dimmable == [] and twelve.word_order == "little" and twelve.holding_registers is None
    assert eight.status_block() == (0, 51)
    assert twelve.status_block() == (1000, 32)
    assert eight.join32(*eight.split32(0x12345678)) == 0x12345678
    assert twelve.split32(0x12345678) == (0x5678, 0x1234)


def _variant(tmp_path: Path, name: str, **changes: object) -> Path:
    data = YAML(typ="safe").load((PROFILE_DIR / "cabinet-8ch.yaml").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / f"{name}.yaml"
    yaml = YAML(typ="safe")
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return path


def test_overlapping_registers_are_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, "bad", input_registers__trip_bits=12)
    with pytest.raises(ProfileError, match="overlapping input_registers: trip_bits and output_level both use address 12"):
        load_profile(path)
    path = _variant(tmp_path, "bad2", holding_registers__stride=1)
    with pytest.raises(ProfileError, match="overlapping holding_registers: level and fade both use address 1"):
        load_profile(path)
    path = _variant(tmp_path, "bad3", discrete_inputs__door=3)
    with pytest.raises(ProfileError, match="overlapping discrete_inputs: feedback and door"):
        load_profile(path)


def test_a_status_block_that_needs_two_reads_is_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, "wide", input_registers__energy={"address": 300, "width": 32})
    with pytest.raises(ProfileError, match=r"more than one FC04 read \(125\)"):
        load_profile(path)


def test_shape_errors_name_the_field(tmp_path: Path) -> None:
    path = _variant(tmp_path, "typo", word_order="middle", coils__contactorr=3)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert "word_order" in str(caught.value) and "coils.contactorr" in str(caught.value)


def _problems(**kw: object) -> list[ConfigProblem]:
    return PLUGIN.validate_controller(controller(**kw))  # type: ignore[arg-type]


def test_valid_controllers_have_no_problems() -> None:
    assert _problems() == []
    assert _problems(profile="cabinet-12ch-relay", circuits=12) == []


def test_unknown_profile_lists_the_known_ones() -> None:
    ctrl = controller().model_copy(update={"profile": "cabinet-99"})
    assert PLUGIN.validate_controller(ctrl) == [
        ConfigProblem(("profile",), "unknown modbus profile 'cabinet-99' (known: cabinet-12ch-relay, cabinet-8ch)")
    ]


def test_channel_problems_have_paths() -> None:
    ctrl = controller()
    channels = list(ctrl.channels)
    channels[2] = channels[2].model_copy(update={"point": 9})
    channels[3] = channels[3].model_copy(update={"point": 1})
    channels[4] = channels[4].model_copy(update={"point": "x"})
    problems = PLUGIN.validate_controller(ctrl.model_copy(update={"channels": channels}))
    assert problems == [
        ConfigProblem(("channels", 2, "point"), "circuit 9 is not in profile cabinet-8ch (circuits 1..8)"),
        ConfigProblem(("channels", 4, "point"), "circuit 'x' is not in profile cabinet-8ch (circuits 1..8)"),
        ConfigProblem(("channels", 3, "point"), "circuit 1 is already used by channel 'c1'"),
    ]


def test_dimmable_channel_on_a_relay_circuit() -> None:
    ctrl = controller(profile="cabinet-12ch-relay", circuits=12)
    channels = list(ctrl.channels)
    channels[5] = channels[5].model_copy(update={"dimmable": True})
    assert PLUGIN.validate_controller(ctrl.model_copy(update={"channels": channels})) == [
        ConfigProblem(
            ("channels", 5, "dimmable"), "circuit 6 of profile cabinet-12ch-relay is relay-only: set dimmable: false"
        )
    ]


def test_settings_model() -> None:
    assert ModbusSettings.model_validate({"host": "10.1.2.3"}) == ModbusSettings(host="10.1.2.3", port=502, unit=1)
    bad_settings = (
        {"host": "h", "unit": 0}, {"host": "h", "unit": 248}, {"host": "h", "port": 0}, {"host": "h", "slave": 1}, {"port": 502}
    )
    for bad in bad_settings:
        with pytest.raises(ValidationError):
            ModbusSettings.model_validate(bad)
    ctrl = controller(host="10.0.0.7", port=1502, unit=3)
    assert PLUGIN.endpoint_key(ctrl) == "10.0.0.7:1502/3"


async def test_floor_client_sends_what_the_driver_sends() -> None:
    r = await make_rig()
    try:
        ctrl = r.driver.controller
        for states, expected in ((every(r, ON), 3), (every(r, OFF), 2)):
            floor = PLUGIN.create_floor_client(ctrl, states)
            before = r.requests()
            await floor.connect()
            try:
                assert await floor.run() == expected
                assert await floor.run() == expected
            finally:
                await floor.close()
            assert r.requests() - before == 2 * expected
        reading = await r.driver.read()
        assert not any(ch.on for ch in reading.channels.values())
    finally:
        await r.driver.close()
        await r.sim.stop()


def test_a_refused_profile_is_a_config_problem_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import drivers.modbus.profile as catalogue

    for shipped in PROFILE_DIR.glob("*.yaml"):
        shutil.copy(shipped, tmp_path)
    _variant(tmp_path, "cabinet-8ch-bad", id="cabinet-8ch-bad", input_registers__trip_bits=12)
    monkeypatch.setattr(catalogue, "PROFILE_DIR", tmp_path)
    catalogue._catalogue.cache_clear()
    try:
        problems = PLUGIN.validate_controller(controller().model_copy(update={"profile": "cabinet-8ch-bad"}))
        assert len(problems) == 1 and problems[0].path == ("profile",)
        assert problems[0].message.startswith("modbus profile cabinet-8ch-bad.yaml refused")
        assert "overlapping input_registers: trip_bits and output_level both use address 12" in problems[0].message
        assert list(PLUGIN.profile_names()) == ["cabinet-12ch-relay", "cabinet-8ch"]
    finally:
        monkeypatch.undo()
        catalogue._catalogue.cache_clear()
