"""OPC UA driver against the simulated PLC on loopback (asyncua on both sides)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from asyncua import Client, ua
from opcua_helpers import bridge_controller, plc_driver, simulated_plc, with_endpoint

from drivers.base import ControllerTimeout, ControllerUnreachable, Fault, RequestRejected
from drivers.opcua import PLUGIN
from drivers.opcua.driver import OpcUaDriver, bare_value
from drivers.opcua.sim import OpcUaSimulator
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelState, Colour, ControllerReading, FaultKind


@pytest.fixture
async def plc() -> AsyncIterator[tuple[OpcUaSimulator, ControllerConfig]]:
    async with simulated_plc(bridge_controller()) as running:
        yield running


@pytest.fixture
async def driver(plc: tuple[OpcUaSimulator, ControllerConfig]) -> AsyncIterator[OpcUaDriver]:
    async with plc_driver(plc[1]) as d:
        yield d


async def test_batch_is_one_write_call_and_read_back_is_one_read(plc, driver) -> None:
    sim, ctrl = plc
    await driver.connect()
    writes, reads = sim.service_count(ctrl.id, "Write"), sim.service_count(ctrl.id, "Read")
    batch = {
        "deck": ChannelState(True, 55.0, Colour(rgb=(255, 40, 0))),
        "cables": ChannelState(True, 35.0),
        "piers": ChannelState(True, 80.0, Colour(cct_k=4000)),
    }
    arrivals = len(sim.write_times(ctrl.id))
    assert [op.kind for op in driver.plan(batch)] == ["Write"]  # compiled ahead, nothing sent
    assert sim.service_count(ctrl.id, "Write") == writes and len(driver._cache) == 1
    result = await driver.apply(batch)
    assert len(driver._cache) == 1  # apply used the batch compiled by plan
    assert result.operations == 1 and not result.rejected
    assert sim.service_count(ctrl.id, "Write") == writes + 1
    assert len(sim.write_times(ctrl.id)) == arrivals + 1
    reading = await driver.read(list(batch))
    assert sim.service_count(ctrl.id, "Read") == reads + 1
    assert {cid: (r.on, r.level) for cid, r in reading.channels.items()} == {
        "deck": (True, 55.0), "cables": (True, 35.0), "piers": (True, 80.0)
    }
    full = await driver.read()
    assert full.channels["deck"].colour == Colour(rgb=(255, 40, 0))
    assert full.channels["piers"].colour == Colour(cct_k=4000)
    # power follows the physics: 1200 x 18 W x 55 % on the deck
    assert full.channels["deck"].power_w == pytest.approx(1200 * 18 * 0.55)
    assert full.power_w == pytest.approx(sum(r.power_w or 0 for r in full.channels.values()))
    assert full.measurements["voltage_v"] > 200


async def test_simulator_refuses_writes_with_timestamp_or_status_like_a_plc(plc, driver) -> None:
    _, ctrl = plc
    await driver.connect()
    assert driver.resolved is not None
    level = driver.resolved.zones["deck"]["level"].node
    async with Client(ctrl.settings.url, timeout=2) as client:
        node = client.get_node(level)
        with pytest.raises(ua.uaerrors.BadWriteNotSupported):
            await node.write_value(ua.Variant(42.0, ua.VariantType.Float))  # sends SourceTimestamp + status
        await node.write_value(bare_value(42.0, "Float"))  # what the driver sends
        assert await node.read_value() == pytest.approx(42.0)


async def test_node_ids_come_from_browse_paths_and_are_resolved_again_after_restart(plc, driver) -> None:
    sim, ctrl = plc
    await driver.apply({"deck": ChannelState(True, 60.0)})
    before = driver.resolved
    assert before is not None
    await sim.restart(ctrl.id)  # cold restart: new program build, new node ids, outputs off
    try:
        reading = await driver.read(["deck"])
    except (ControllerUnreachable, ControllerTimeout):  # the loss was noticed by this call
        reading = await driver.read(["deck"])
    assert reading.channels["deck"].on is False  # what the reconciler sees, so it re-applies
    result = await driver.apply({"deck": ChannelState(True, 65.0)})  # the reconciler's re-apply
    assert result.operations == 1 and not result.rejected
    after = driver.resolved
    assert after is not None and driver.sessions == 2
    assert after.zones["deck"]["level"].node != before.zones["deck"]["level"].node
    assert (await driver.read(["deck"])).channels["deck"].level == 65.0


async def test_recall_scene_method_replaces_writes_when_the_batch_is_a_stored_scene(plc, driver) -> None:
    sim, ctrl = plc
    all_at = {ch.id: ChannelState(True, 70.0) for ch in ctrl.channels}
    ops = driver.plan(all_at)
    assert [(op.kind, op.detail) for op in ops] == [("Call", "RecallScene(2)")]
    await driver.connect()
    writes = sim.service_count(ctrl.id, "Write")
    assert (await driver.apply(all_at)).operations == 1
    assert sim.service_count(ctrl.id, "Call") == 1 and sim.service_count(ctrl.id, "Write") == writes
    reading = await driver.read()
    assert all(r.level == 70.0 and r.on for r in reading.channels.values())
    assert reading.measurements["scene"] == 2
    # a level the PLC has no scene for is written, not called
    odd = {ch.id: ChannelState(True, 33.0) for ch in ctrl.channels}
    assert [op.kind for op in driver.plan(odd)] == ["Write"]


async def test_profile_without_method_writes_levels() -> None:
    ctrl = bridge_controller(profile="bridge-plc-basic")
    sim = PLUGIN.create_simulator([ctrl], any_port=True)
    await sim.start()
    d = PLUGIN.create_driver(with_endpoint(ctrl, sim.endpoints()[ctrl.id]))
    try:
        all_on = {ch.id: ChannelState(True, 100.0) for ch in ctrl.channels}
        assert [op.kind for op in d.plan(all_on)] == ["Write"]
        await d.apply(all_on)
        assert sim.service_count(ctrl.id, "Call") == 0
        assert all(r.on and r.level == 100.0 for r in (await d.read(list(all_on))).channels.values())
    finally:
        await d.close()
        await sim.stop()


class Pushes:
    """Readings pushed by a driver, and a way to wait for one that satisfies a condition."""

    def __init__(self) -> None:
        self.seen: list[ControllerReading] = []
        self.event = asyncio.Event()

    def __call__(self, reading: ControllerReading) -> None:
        self.seen.append(reading)
        self.event.set()

    async def until(self, predicate, timeout: float = 3.0) -> ControllerReading:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(timeout):
            while not (self.seen and predicate(self.seen[-1])):
                self.event.clear()
                await self.event.wait()
        return self.seen[-1]


async def test_subscription_pushes_data_changes(plc, driver) -> None:
    sim, ctrl = plc
    pushes = Pushes()
    assert driver.subscribe(pushes) is True
    await driver.connect()
    assert driver.pushing == "subscription"
    await driver.apply({"towers": ChannelState(True, 45.0)})
    last = await pushes.until(lambda r: r.channels["towers"].level == 45.0 and r.channels["towers"].power_w)
    assert last.channels["towers"].power_w == pytest.approx(64 * 200 * 0.45)
    sim.inject(ctrl.id, Fault("lamp_failure", channel="towers", value=0.25))
    last = await pushes.until(lambda r: FaultKind.LAMP_FAILURE in r.channels["towers"].faults)
    assert last.channels["towers"].power_w == pytest.approx(64 * 200 * 0.45 * 0.75)


async def test_pushes_pause_while_a_show_drives_the_plc_and_resume_with_the_latest(plc, driver) -> None:
    sim, ctrl = plc
    pushes = Pushes()
    driver.subscribe(pushes)
    await driver.connect()
    await driver.apply({"towers": ChannelState(True, 45.0)})
    await pushes.until(lambda r: r.channels["towers"].level == 45.0)
    await driver.pause_pushes(True)
    seen = len(pushes.seen)
    sim.inject(ctrl.id, Fault("lamp_failure", channel="towers", value=0.25))
    await asyncio.sleep(1.2)  # more than two publishing intervals
    assert len(pushes.seen) == seen
    await driver.pause_pushes(False)
    last = await pushes.until(lambda r: FaultKind.LAMP_FAILURE in r.channels["towers"].faults)
    assert last.channels["towers"].level == 45.0


async def test_poll_fallback_when_subscriptions_are_off(plc) -> None:
    _, ctrl = plc
    d = PLUGIN.create_driver(with_endpoint(ctrl, {"subscribe": False}))
    pushes = Pushes()
    d.subscribe(pushes)
    try:
        await d.connect()
        assert d.pushing == "poll"
        await pushes.until(lambda _r: len(pushes.seen) >= 2)
        assert pushes.seen[-1].energy_kwh is not None
        await d.pause_pushes(True)  # a show: the polling pushes stop too
        seen = len(pushes.seen)
        await asyncio.sleep(2.5 * ctrl.poll_s)
        assert len(pushes.seen) == seen
        await d.pause_pushes(False)
        await pushes.until(lambda _r: len(pushes.seen) > seen, timeout=3 * ctrl.poll_s)
    finally:
        await d.close()


async def test_bad_status_codes_become_typed_errors_naming_the_node(plc, driver) -> None:
    sim, ctrl = plc
    sim.inject(ctrl.id, Fault("zone_failure", channel="cables"))
    await sim.settle()
    result = await driver.apply({"deck": ChannelState(True, 20.0), "cables": ChannelState(True, 20.0)})
    assert set(result.rejected) == {"cables"}
    assert "BridgeLighting/Zones/cables/Enable" in result.rejected["cables"]
    assert "BadDeviceFailure" in result.rejected["cables"]
    with pytest.raises(RequestRejected, match=r"plc-test: write BridgeLighting/Zones/cables/\w+: BadDeviceFailure"):
        await driver.apply({"cables": ChannelState(True, 20.0)})
    faults = (await driver.read()).channels["cables"].faults
    assert FaultKind.DEVICE_FAULT in faults
    sim.clear(ctrl.id)
    sim.inject(ctrl.id, Fault("error"))
    with pytest.raises(RequestRejected, match="read BridgeLighting/Zones/deck/Enable: BadDeviceFailure"):
        await driver.read(["deck"])


async def test_wrong_type_and_read_only_nodes_are_refused(plc, driver) -> None:
    _, ctrl = plc
    await driver.connect()
    assert driver.resolved is not None
    zone = driver.resolved.zones["deck"]
    async with Client(ctrl.settings.url, timeout=2) as client:
        params = ua.WriteParameters(
            NodesToWrite=[
                ua.WriteValue(NodeId=zone["level"].node, AttributeId=ua.AttributeIds.Value, Value=bare_value(50, "UInt16")),
                ua.WriteValue(NodeId=zone["power_w"].node, AttributeId=ua.AttributeIds.Value, Value=bare_value(1.0, "Double")),
            ]
        )
        results = await client.uaclient.write(params)
    assert [r.name for r in results] == ["BadTypeMismatch", "BadUserAccessDenied"]


async def test_offline_and_slow_plc(plc, driver) -> None:
    sim, ctrl = plc
    await driver.connect()
    sim.inject(ctrl.id, Fault("slow", value=3.0))
    with pytest.raises(ControllerTimeout, match="plc-test"):
        await driver.read(["deck"])
    sim.clear(ctrl.id, "slow")
    sim.inject(ctrl.id, Fault("offline"))
    await sim.settle()
    with pytest.raises((ControllerUnreachable, ControllerTimeout)):
        await driver.read(["deck"])
    sim.clear(ctrl.id, "offline")
    await sim.settle()
    assert (await driver.read(["deck"])).channels["deck"].on is False


async def test_missing_namespace_is_a_clear_error(plc) -> None:
    _, ctrl = plc
    wrong = ctrl.model_copy(update={"profile": "bridge-plc-basic"})
    d = PLUGIN.create_driver(wrong)
    with pytest.raises(Exception, match="no namespace urn:lightctl:plc:bridge-lighting-v1"):
        await d.connect()
    await d.close()


async def test_many_plcs_start_fast_with_shared_namespace_zero() -> None:
    ctrls = [bridge_controller(f"plc-{i}") for i in range(20)]
    sim = OpcUaSimulator(ctrls, any_port=True)
    await sim.start()
    try:
        assert sim.startup_s is not None and sim.startup_s < 8.0  # one standard space, then ~10 ms each
        a, b = sim.plcs["plc-0"].server, sim.plcs["plc-1"].server
        assert a is not None and b is not None
        ns_a = await a.get_namespace_array()
        ns_b = await b.get_namespace_array()
        assert ns_a[1] == "urn:lightctl:sim:plc-0" and ns_b[1] == "urn:lightctl:sim:plc-1"
    finally:
        await sim.stop()


async def test_floor_client_sends_the_drivers_requests_pre_encoded(plc) -> None:
    sim, ctrl = plc
    batch = {ch.id: ChannelState(True, 33.0) for ch in ctrl.channels}
    floor = PLUGIN.create_floor_client(ctrl, batch)
    await floor.connect()
    try:
        writes, reads = sim.service_count(ctrl.id, "Write"), sim.service_count(ctrl.id, "Read")
        assert await floor.run() == 2
        assert await floor.run() == 2  # the bench runs each floor session every round
        assert sim.service_count(ctrl.id, "Write") == writes + 2
        assert sim.service_count(ctrl.id, "Read") == reads + 2
    finally:
        await floor.close()
    d = PLUGIN.create_driver(ctrl)
    try:
        assert all(r.level == 33.0 and r.on for r in (await d.read(list(batch))).channels.values())
    finally:
        await d.close()


async def test_subscription_is_restored_after_the_plc_restarts(plc, driver) -> None:
    sim, ctrl = plc
    pushes = Pushes()
    driver.subscribe(pushes)
    await driver.apply({"piers": ChannelState(True, 25.0)})
    await pushes.until(lambda r: r.channels["piers"].level == 25.0)
    await sim.restart(ctrl.id)
    for _ in range(2):  # the first call may be the one that finds the session gone
        try:
            await driver.apply({"piers": ChannelState(True, 75.0)})
            break
        except (ControllerUnreachable, ControllerTimeout):
            continue
    assert driver.sessions == 2 and driver.pushing == "subscription"
    last = await pushes.until(lambda r: r.channels["piers"].level == 75.0 and r.channels["piers"].power_w)
    assert last.channels["piers"].power_w == pytest.approx(96 * 150 * 0.75)


def test_plugin_validates_points_against_the_profile() -> None:
    ctrl = bridge_controller(profile="bridge-plc-basic")
    assert PLUGIN.validate_controller(ctrl) == []
    rgb = bridge_controller()  # RGB zones on a profile without colour variables
    problems = PLUGIN.validate_controller(rgb.model_copy(update={"profile": "bridge-plc-basic"}))
    assert {p.path for p in problems} == {("channels", 0, "luminaires"), ("channels", 1, "luminaires"), ("channels", 2, "luminaires")}
    unknown = PLUGIN.validate_controller(ctrl.model_copy(update={"profile": "no-such-plc"}))
    assert unknown[0].path == ("profile",) and "bridge-plc" in unknown[0].message
    assert PLUGIN.endpoint_key(ctrl) == "127.0.0.1:4840"


async def test_power_follows_the_fade_and_energy_integrates_it(plc, driver) -> None:
    sim, ctrl = plc
    full = 1200 * 18.0  # deck: 1200 luminaires x 18 W
    await driver.apply({"deck": ChannelState(True, 100.0, fade_s=1.0)})
    early = (await driver.read()).channels["deck"].power_w
    assert early is not None and early < 0.9 * full  # still fading up
    await asyncio.sleep(1.3)
    first = await driver.read()
    assert first.channels["deck"].power_w == pytest.approx(full)
    await asyncio.sleep(1.0)
    second = await driver.read()
    assert first.energy_kwh is not None and second.energy_kwh is not None
    gained = second.energy_kwh - first.energy_kwh
    assert gained == pytest.approx(full * (second.at - first.at) / 3.6e6, rel=0.15)
    sim.inject(ctrl.id, Fault("breaker_trip", channel="deck"))
    sim.inject(ctrl.id, Fault("door_open"))
    await sim.settle()
    tripped = await driver.read()
    assert tripped.channels["deck"].power_w == 0.0 and FaultKind.BREAKER_TRIP in tripped.channels["deck"].faults
    assert {FaultKind.BREAKER_TRIP, FaultKind.DOOR_OPEN} <= tripped.faults


def test_write_masks_are_read_from_the_request_bytes() -> None:
    import datetime as dt

    from asyncua.common.utils import Buffer
    from asyncua.ua.ua_binary import nodeid_from_binary, struct_to_binary

    from drivers.opcua.sim_server import _write_masks

    values = [
        bare_value(True, "Boolean"),
        ua.DataValue(ua.Variant(1.5, ua.VariantType.Float)),  # status Good, as Node.write_value sends
        ua.DataValue(ua.Variant("zone", ua.VariantType.String), StatusCode=None,
                     SourceTimestamp=dt.datetime.now(dt.UTC)),
        ua.DataValue(ua.Variant([1, 2, 3], ua.VariantType.UInt32), StatusCode=None),
        bare_value(4000, "UInt16"),
    ]
    nodes = [ua.NodeId(5003, 2), ua.NodeId("deck.Level", 3), ua.NodeId(70000, 2), ua.NodeId(7, 0), ua.NodeId(9, 1)]
    request = ua.WriteRequest(
        Parameters=ua.WriteParameters(
            NodesToWrite=[
                ua.WriteValue(NodeId=n, AttributeId=ua.AttributeIds.Value, Value=v) for n, v in zip(nodes, values, strict=True)
            ]
        )
    )
    body = Buffer(struct_to_binary(request))
    nodeid_from_binary(body)  # the type id, as the processor has read it
    assert _write_masks(body) == [0x01, 0x03, 0x05, 0x01, 0x01]


async def test_planned_requests_are_sent_pre_encoded(plc, driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A show plans its cues before the beat: the Write and the RecallScene Call are encoded then,
    and at the beat only a header goes in front of them. Without asyncua's request bookkeeping
    the driver sends through asyncua's own encoder."""
    import drivers.opcua.asyncua_internals as internals
    import drivers.opcua.driver as opcua_driver

    sim, ctrl = plc
    await driver.connect()
    dim = {"deck": ChannelState(True, 25.0), "towers": ChannelState(True, 45.0)}
    scene = {ch.id: ChannelState(True, 70.0) for ch in ctrl.channels}
    driver.plan(dim), driver.plan(scene)

    def no_encoding(*args: object) -> None:
        raise AssertionError("encoded at the beat")

    monkeypatch.setattr(opcua_driver, "encode_write", no_encoding)
    monkeypatch.setattr(opcua_driver, "encode_call", no_encoding)
    sent = []
    real_send = internals.send_encoded

    async def counting(client, protocol, request):  # type: ignore[no-untyped-def]
        sent.append(request.response.__name__)
        return await real_send(client, protocol, request)

    monkeypatch.setattr(opcua_driver, "send_encoded", counting)
    assert (await driver.apply(dim)).operations == 1
    assert {cid: r.level for cid, r in (await driver.read(list(dim))).channels.items()} == {"deck": 25.0, "towers": 45.0}
    assert (await driver.apply(scene)).operations == 1
    assert sim.service_count(ctrl.id, "Call") == 1
    assert (await driver.read()).measurements["scene"] == 2
    assert sent == ["WriteResponse", "CallResponse"]
    monkeypatch.setattr(opcua_driver, "usable", lambda client: None)
    assert (await driver.apply(dim)).operations == 1 and len(sent) == 2
    assert sim.service_count(ctrl.id, "Write") == 2


def test_monitored_values_are_copies_the_address_space_cannot_reach() -> None:
    from drivers.opcua.sim_load import copy_datavalue

    scalar = ua.DataValue(ua.Variant(42.0, ua.VariantType.Float))
    kept = copy_datavalue(scalar)
    assert kept == scalar and kept is not scalar and kept.Value is not scalar.Value
    scalar.Value.Value = 7.0
    assert kept.Value is not None and kept.Value.Value == 42.0
    array = ua.DataValue(ua.Variant([1, 2, 3], ua.VariantType.Int32))
    kept = copy_datavalue(array)
    assert array.Value is not None and isinstance(array.Value.Value, list)
    array.Value.Value.append(4)
    assert kept.Value is not None and kept.Value.Value == [1, 2, 3]
