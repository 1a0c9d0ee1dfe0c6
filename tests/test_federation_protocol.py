"""The federation's vocabulary without a broker: Sparkplug B payloads on the wire, topics, STATE,
sequence numbers, the metrics a district publishes, the selectors the city sends each district,
the config split by district, and the config's federation section."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lightctl.config.loader import read_yaml
from lightctl.config.problems import ConfigError
from lightctl.federation import vocabulary
from lightctl.federation.fanout import district_targets, explicit_selector
from lightctl.federation.host import PrimaryHost
from lightctl.federation.mirror import Mirror
from lightctl.federation.requests import RequestError, parse_request
from lightctl.federation.schema import DataType
from lightctl.federation.sparkplug import (
    MessageType,
    Metric,
    Payload,
    Sequence256,
    SparkplugError,
    Topic,
    decode,
    encode,
    follows,
    parse_state,
    state_payload,
)
from lightctl.federation.vocabulary import ChannelFacts, ControllerFacts, parse_desired
from lightctl.inventory.index import Inventory
from lightctl.model.desired import RELEASED
from lightctl.model.values import ChannelState
from lightctl.process.mosquitto import render_acl
from lightctl.resolve.loading import config_from_data
from lightctl.resolve.split import NOTHING, district_configs, localize
from lightctl.store import Store
from tests.conftest import ROOT, build_config
from tests.federation_support import federated_data


def test_a_payload_is_the_specifications_wire_format() -> None:
    payload = Payload(1, (Metric("a", DataType.Boolean, True),), 2)
    # field 1 (timestamp) = 1; field 2 (metric: name "a", datatype 11, boolean_value field 14 = 1); field 3 (seq) = 2
    assert encode(payload).hex() == "0801" + "1207" + "0a0161" + "200b" + "7001" + "1802"


def test_every_value_type_lightctl_uses_goes_and_comes_back() -> None:
    metrics = (
        Metric("i8", DataType.Int8, -5), Metric("i32", DataType.Int32, -70000), Metric("i64", DataType.Int64, -(2**40)),
        Metric("u64", DataType.UInt64, 2**63 + 5), Metric("t", DataType.DateTime, 1_796_430_000_000),
        Metric("f", DataType.Float, 0.5), Metric("d", DataType.Double, 1234.5678), Metric("b", DataType.Boolean, False),
        Metric("s", DataType.String, "渝中 · 朝天门"), Metric("null", DataType.String, None),
        Metric("late", DataType.UInt64, 7, 1_796_000_000_000, True), Metric("bytes", DataType.Bytes, b"\x00\x01"),
    )
    back = decode(encode(Payload(1_796_430_000_123, metrics, 255, "uuid-1", b"body")))
    assert back == Payload(1_796_430_000_123, metrics, 255, "uuid-1", b"body")
    with pytest.raises(SparkplugError, match="not a Sparkplug B payload"):
        decode(b"\xff\xff\xff")


def test_topics_state_and_sequence_numbers() -> None:
    topic = Topic(MessageType.DDATA, "lightctl", "yuzhong", "ctm-c01")
    assert str(topic) == "spBv1.0/lightctl/DDATA/yuzhong/ctm-c01" and Topic.parse(str(topic)) == topic
    assert Topic.parse("spBv1.0/lightctl/NBIRTH/yuzhong").device is None
    for bad in ("spBv1.0/lightctl/NBIRTH/yuzhong/x", "spBv1.0/lightctl/DDATA/yuzhong", "spAv1.0/g/NDATA/n", "spBv1.0/g/XDATA/n"):
        with pytest.raises(SparkplugError):
            Topic.parse(bad)
    assert parse_state(state_payload(True, 1234)) == (True, 1234)
    assert json.loads(state_payload(False, 5)) == {"online": False, "timestamp": 5}
    seq = Sequence256()
    assert seq.birth() == 0 and [seq.next() for _ in range(256)][-2:] == [255, 0]
    assert follows(255, 0) and follows(3, 4) and not follows(3, 5)


def test_a_controllers_facts_say_what_changed() -> None:
    before = ControllerFacts("online", None, 1, 0, {"c1": ChannelFacts.of(None, ChannelState(on=False, level=0.0))}, 10.0)
    after = ControllerFacts("online", None, 1, 1, {"c1": ChannelFacts(True, 80.0, 55.0, None, None, "on 80")}, 12.0)
    names = [m.name for m in after.metrics(before, with_reading=False)]
    assert names == ["Channels Pending", "Channels/c1/On", "Channels/c1/Level", "Channels/c1/Desired"]
    assert "Power/Watts" in [m.name for m in after.metrics(before)]
    assert {m.name for m in after.metrics()} >= {"Link/State", "Channels/c1/Released", "Channels/c1/Held By"}
    for state in (ChannelState(on=True), ChannelState(on=True, level=42.5), ChannelState(on=False, level=0.0), RELEASED):
        assert parse_desired(vocabulary.desired_text(state)) == state


def test_the_city_sends_each_district_a_selector_it_knows() -> None:
    config = build_config(federated_data({"d1": 3, "d2": 2}))
    by_district = {
        d.id: Inventory(config.model_copy(update={"districts": [d]})) for d in config.districts
    }
    whole = Inventory(config)
    targets = district_targets("*", whole.select("*"), by_district)
    assert targets == {"d1": "*", "d2": "*"}
    mixed = "district:江北, controller:d1-0, !channel:d1-0/c2"
    targets = district_targets(mixed, whole.select(mixed), by_district)
    assert targets == {"d2": "*", "d1": "channel:d1-0/c1, channel:d1-0/c3, channel:d1-0/c4"}
    for district, target in targets.items():
        assert by_district[district].select(target) == whole.select(mixed) & by_district[district].all_keys
    assert district_targets("tag:bridge", whole.select("tag:bridge"), by_district) == {"d2": "*"}
    assert explicit_selector([("d1-1", c) for c in ("c1", "c2", "c3", "c4")], by_district["d1"]) == "controller:d1-1"


class Heard:
    """What the host tells the city daemon (lightctl.federation.host.HostListener)."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    def district_changed(self, view: Any, what: str) -> None:
        self.changes.append((view.id, what))

    def controller_changed(self, district: str, controller: str) -> None:
        self.changes.append((controller, "state"))

    def event_received(self, district: str, event: Any, body: dict[str, Any]) -> None:
        self.changes.append((district, event.kind))

    def late_answer(self, district: str, body: dict[str, Any]) -> None:
        pass


async def test_the_city_asks_for_a_rebirth_when_a_message_is_missing(tmp_path: Path) -> None:
    config = build_config(federated_data({"d1": 1}))
    city_config = config_from_data({"installation": {"name": "市", "name_en": "City", "location": {"lat": 29.56, "lon": 106.58}},
                                    "federation": {"role": "city", "districts": ["d1"]}}, source="<city>")
    assert city_config.federation is not None
    store = Store(tmp_path / "city.db")
    await asyncio.to_thread(store.open)
    mirror = Mirror(["d1"], city_config)
    heard = Heard()
    host = PrimaryHost(city_config.federation, mirror, store.federation, heard)  # not connected: it sends nothing
    try:
        district = config.districts[0]
        sites = [s.model_dump(mode="json", exclude={"controllers"}) for s in district.sites]
        inventory = {"district": {**district.model_dump(mode="json", exclude={"sites"}), "sites": sites}, "controllers": ["d1-0"]}
        birth = (Metric(vocabulary.BD_SEQ, DataType.Int64, 3), Metric(vocabulary.INVENTORY, DataType.String, json.dumps(inventory)))
        host._dispatch("spBv1.0/lightctl/NBIRTH/d1", encode(Payload(1, birth, 0)))
        controller = district.sites[0].controllers[0]
        config_json = json.dumps({"site": district.sites[0].id, **controller.model_dump(mode="json", exclude={"settings"})})
        host._dispatch("spBv1.0/lightctl/DBIRTH/d1/d1-0",
                       encode(Payload(1, (Metric(vocabulary.CONFIG, DataType.String, config_json),), 1)))
        assert mirror.districts["d1"].complete and ("d1", "complete") in heard.changes
        host._dispatch("spBv1.0/lightctl/DDATA/d1/d1-0", encode(Payload(1, (Metric(vocabulary.LINK, DataType.String, "offline"),), 3)))
        assert mirror.districts["d1"].stale and host.dropped == 1 and "d1" in host._rebirth_asked
        assert mirror.controllers["d1-0"].link == "unknown"  # what came out of turn was not taken
        # An NDEATH of an older session (another bdSeq) is not this session's death.
        host._dispatch("spBv1.0/lightctl/NDEATH/d1", encode(Payload(1, (Metric(vocabulary.BD_SEQ, DataType.Int64, 2),))))
        assert mirror.districts["d1"].online
        host._dispatch("spBv1.0/lightctl/NDEATH/d1", encode(Payload(1, (Metric(vocabulary.BD_SEQ, DataType.Int64, 3),))))
        assert not mirror.districts["d1"].online and ("d1", "offline") in heard.changes
        with pytest.raises(SparkplugError, match="born as district"):
            host._dispatch("spBv1.0/lightctl/NBIRTH/d2", encode(Payload(1, birth, 0)))
    finally:
        await host.stop()
        await asyncio.to_thread(store.close)


def test_a_request_that_is_not_lightctls_is_refused_by_name() -> None:
    assert parse_request('{"request_id": "5-ab", "action": "scene", "user": "u", "scene": "half", "target": "*"}').scene == "half"
    with pytest.raises(RequestError, match="action"):
        parse_request('{"request_id": "5-ab", "action": "explode", "user": "u"}')


def test_the_shipped_config_splits_into_valid_district_configs() -> None:
    data = json.loads(json.dumps(read_yaml(ROOT / "config.yaml", lines=False)))
    whole = build_config(data)
    inventory = Inventory(whole)
    split = district_configs(data)
    assert list(split) == [d.id for d in whole.districts]
    for district, own in split.items():
        config = config_from_data(own, source=f"<{district}>")  # every selector names what the district has
        local = Inventory(config)
        for scene in config.scenes:
            original = next(s for s in whole.scenes if s.id == scene.id)
            for rule in original.rules:  # each rule reaches in the district what it reached there in the city
                reached = inventory.select(rule.target) & local.all_keys
                kept = [r for r in scene.rules if r.target != NOTHING and local.select(r.target) == reached]
                assert kept or not reached, (district, scene.id, rule.target)
    assert localize("site:nowhere-here, tag:bridge", Inventory(config_from_data(split["jiangbei"], source="<j>"))) is not None


def test_the_federation_section_is_checked() -> None:
    data = federated_data({"d1": 1, "d2": 1})
    district = copy.deepcopy(data)
    district["federation"] = {"role": "district", "node": "d1"}
    with pytest.raises(ConfigError, match=r"federation.node: a district daemon runs its own district only"):
        config_from_data(district, source="<d1>")
    district["districts"] = district["districts"][:1]
    assert config_from_data(district, source="<d1>").federation is not None
    city: dict[str, Any] = {"installation": data["installation"], "federation": {"role": "city", "districts": ["d1", "d2"]}}
    assert config_from_data(city, source="<city>").districts == []
    with pytest.raises(ConfigError, match="has no field controllers of its own"):
        config_from_data({**city, "districts": data["districts"]}, source="<city>")
    with pytest.raises(ConfigError, match="at least one district is needed"):
        config_from_data({"installation": data["installation"]}, source="<none>")


def test_the_shipped_broker_config_is_what_lightctl_writes() -> None:
    deploy = ROOT / "deploy" / "mosquitto"
    data = read_yaml(ROOT / "config.yaml", lines=False)
    districts = [d["id"] for d in data["districts"]]
    assert (deploy / "lightctl.acl").read_text(encoding="utf-8") == render_acl("lightctl", "city", districts)
    conf = (deploy / "mosquitto.conf").read_text(encoding="utf-8")
    for line in ("allow_anonymous false", "acl_file /etc/mosquitto/lightctl.acl", "listener 8883", "require_certificate false"):
        assert line in conf
    assert Path(deploy / "README.md").exists()
