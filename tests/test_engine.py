"""The one switch through the engine against real Modbus simulators on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from drivers.base import Fault
from lightctl.inventory.index import Inventory
from lightctl.model.values import ChannelState
from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import ConvergedEvent, EngineSettings, Status
from lightctl.simulation.farm import SimulatorFarm
from tests.conftest import installation_data, modbus_controller

ON = ChannelState(True, 100.0)
HALF = ChannelState(True, 50.0)


async def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def test_one_switch_over_50_controllers_with_20_percent_offline(make_farm) -> None:  # type: ignore[no-untyped-def]
    data = installation_data([modbus_controller(f"m{i:02d}", i) for i in range(50)])
    farm, config = await make_farm(data, processes=2)
    offline = [f"m{i:02d}" for i in range(0, 50, 5)]  # 10 of 50
    for cid in offline:
        await farm.inject(cid, Fault("offline"))
    inventory = Inventory(config)
    deadline_s = 2.0
    engine = Engine(inventory, EngineSettings(deadline_s=deadline_s, retry_initial_s=0.2, retry_max_s=0.5, polling=False))
    await engine.start()
    try:
        engine.set_desired(dict.fromkeys(inventory.all_keys, HALF))
        outcome = await engine.command(inventory.all_keys)
        assert outcome.elapsed_s < deadline_s + 0.5
        online = [o for cid, o in outcome.controllers.items() if cid not in offline]
        assert len(online) == 40 and all(o.status is Status.CONFIRMED for o in online)
        assert all(o.elapsed_s < deadline_s for o in online)
        for cid in offline:
            failed = outcome.controllers[cid]
            assert failed.status is Status.FAILED
            assert failed.error_kind in {"unreachable", "timeout"} and failed.error
        assert set(engine.unconfirmed()) == set(offline)

        # They come back, and converge by themselves (no new command).
        for cid in offline:
            await farm.clear(cid, "offline")
        assert await wait_until(lambda: not engine.unconfirmed(), timeout=10.0), engine.unconfirmed()
        for cid in offline:
            reading = engine.reading_of(cid)
            assert reading is not None
            assert all(ch.on and abs((ch.level or 0) - 50.0) <= 0.1 for ch in reading.channels.values())
    finally:
        await engine.stop()


async def test_command_result_kinds(make_farm) -> None:  # type: ignore[no-untyped-def]
    data = installation_data([modbus_controller(f"k{i}", i) for i in range(4)])
    farm, config = await make_farm(data)
    await farm.inject("k1", Fault("slow", value=3.0))
    await farm.inject("k2", Fault("error", value=4))
    await farm.inject("k3", Fault("stuck_contactor", channel="c2"))
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=1.0, polling=False))
    await engine.start()
    try:
        # The simulated cabinets start with every contactor open; k3's c2 is stuck open.
        engine.set_desired(dict.fromkeys(inventory.all_keys, ON))
        outcome = await engine.command(inventory.all_keys)
        assert outcome.controllers["k0"].status is Status.CONFIRMED
        assert outcome.controllers["k0"].operations >= 1
        assert outcome.controllers["k1"].status is Status.FAILED
        assert outcome.controllers["k1"].error_kind == "timeout"
        assert outcome.controllers["k2"].status is Status.FAILED
        assert outcome.controllers["k2"].error_kind == "rejected"
        stuck = outcome.controllers["k3"]
        assert stuck.status is Status.UNCONFIRMED, stuck
        assert stuck.error and "c2: want on" in stuck.error
    finally:
        await engine.stop()


async def test_poll_sees_a_local_change_and_the_engine_converges(make_farm) -> None:  # type: ignore[no-untyped-def]
    data = installation_data([modbus_controller("p0", 0, poll_s=0.3)])
    farm, config = await make_farm(data)
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=1.0, retry_initial_s=0.1, retry_max_s=0.2))
    await engine.start()
    try:
        engine.set_desired(dict.fromkeys(inventory.all_keys, ON))
        outcome = await engine.command(inventory.all_keys)
        assert outcome.count(Status.CONFIRMED) == 1
        # A breaker trips on c3: the poll sees it, the channel is no longer confirmed.
        await farm.inject("p0", Fault("breaker_trip", channel="c3"))
        assert await wait_until(lambda: "c3" in engine.unconfirmed().get("p0", []), timeout=5.0)
        # The breaker is reset in the field: the engine re-applies and confirms by itself.
        await farm.clear("p0", "breaker_trip")
        assert await wait_until(lambda: not engine.unconfirmed(), timeout=5.0), engine.unconfirmed()
    finally:
        await engine.stop()


async def test_a_fade_longer_than_the_deadline_is_still_confirmed(make_farm) -> None:  # type: ignore[no-untyped-def]
    data = installation_data([modbus_controller("f0", 0, channels=2)])
    _farm, config = await make_farm(data)
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=0.5, polling=False))
    await engine.start()
    try:
        engine.set_desired(dict.fromkeys(inventory.all_keys, ChannelState(True, 40.0, fade_s=1.0)))
        outcome = await engine.command(inventory.all_keys)
        result = outcome.controllers["f0"]
        assert result.status is Status.CONFIRMED, result
        assert 1.0 <= result.elapsed_s < 1.5
    finally:
        await engine.stop()


async def test_pushed_readings_are_watched_without_polling(make_farm) -> None:  # type: ignore[no-untyped-def]
    """An OPC UA PLC pushes data changes; with polling effectively off (poll_s 3600) the engine
    still sees a change made at the bridge's own panel (another client), and puts it back."""
    from drivers.opcua.bench import controller_data
    from drivers.registry import get_plugin

    data = installation_data([controller_data(0)])
    _farm, config = await make_farm(data)
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=3.0, retry_initial_s=0.1, retry_max_s=0.3))
    await engine.start()
    panel = get_plugin("opcua").create_driver(next(iter(config.controllers())))
    try:
        assert engine.runtimes["ua00000"].pushed
        engine.set_desired(dict.fromkeys(inventory.all_keys, ON))
        outcome = await engine.command(inventory.all_keys)
        assert outcome.count(Status.CONFIRMED) == 1
        converged: list[ConvergedEvent] = []
        engine.listeners.append(lambda e: converged.append(e) if isinstance(e, ConvergedEvent) else None)
        await panel.apply({"cables": ChannelState(True, 20.0)})
        # The push shows the change; the engine re-applies the zone by itself (no poll, no command).
        assert await wait_until(lambda: any(e.outcome.status is Status.CONFIRMED for e in converged), timeout=8.0)
        assert converged[0].outcome.channels == 1 and not engine.unconfirmed()
        reading = await panel.read({"cables"})
        assert reading.channels["cables"].level == 100.0
    finally:
        await panel.close()
        await engine.stop()


@asynccontextmanager
async def connected_engine(make_farm, *ids: str) -> AsyncIterator[tuple[SimulatorFarm, Inventory, Engine]]:  # type: ignore[no-untyped-def]
    """Simulated cabinets and an engine connected to them (no polling), stopped afterwards."""
    farm, config = await make_farm(installation_data([modbus_controller(cid, i) for i, cid in enumerate(ids)]))
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=2.0, polling=False))
    await engine.start()
    try:
        await engine.connect_all()
        yield farm, inventory, engine
    finally:
        await engine.stop()


async def test_fire_sends_a_prepared_cue_and_declines_while_the_controller_is_busy(make_farm) -> None:  # type: ignore[no-untyped-def]
    async with connected_engine(make_farm, "f0", "f1") as (farm, inventory, engine):
        keys = inventory.select("controller:f0")
        batch = {ch: HALF for _, ch in keys}
        prepared = engine.runtimes["f0"].driver.prepare(batch)
        assert prepared is not None

        # a command holds f0 (a slow cabinet): the cue is not fired, nothing is sent
        await farm.inject("f0", Fault("slow", value=0.3))
        engine.set_desired(dict.fromkeys(keys, ON))
        command = asyncio.create_task(engine.command(keys))
        await asyncio.sleep(0.05)
        assert engine.fire("f0", batch, prepared, 1.0) is None
        await command
        await farm.clear("f0", "slow")

        fired = engine.fire("f0", batch, prepared, 1.0)
        assert fired is not None
        assert engine.runtimes["f0"].lock.locked()  # held until the device has the batch
        outcome = await fired
        assert outcome.status is Status.SENT and outcome.operations >= 1
        assert not engine.runtimes["f0"].lock.locked()
        assert all(engine.runtimes["f0"].desired[ch] == HALF for ch in batch)
        confirm = await engine.command(keys)
        assert confirm.controllers["f0"].status is Status.CONFIRMED


async def test_a_prepared_send_that_raises_falls_back_and_frees_the_controller(make_farm) -> None:  # type: ignore[no-untyped-def]
    async with connected_engine(make_farm, "r0") as (_, inventory, engine):
        batch = {ch: HALF for _, ch in inventory.select("controller:r0")}

        class Broken:
            def fire(self) -> None:
                raise RuntimeError("a driver bug")

            def prepare(self, batch: object) -> None:
                raise RuntimeError("a driver bug")

        assert engine.fire("r0", batch, Broken(), 1.0) is None  # type: ignore[arg-type]
        engine.runtimes["r0"].driver.prepare = Broken().prepare  # type: ignore[method-assign,assignment]
        assert engine.prepare("r0", batch) is None
        assert not engine.runtimes["r0"].lock.locked()
        outcome = await engine.send("r0", batch, 1.0)  # what the show runner then does
        assert outcome.status is Status.SENT


async def test_a_command_that_waits_behind_our_own_work_fails_as_busy_not_offline(make_farm) -> None:  # type: ignore[no-untyped-def]
    """The daemon's own actions never look like a field fault (issue 13.2): a controller kept busy
    by something of ours past a command's deadline is reported busy, naming what held it, and
    its link stays online."""
    from lightctl.model.values import LinkState

    data = installation_data([modbus_controller("b0", 0)])
    _farm, config = await make_farm(data)
    inventory = Inventory(config)
    engine = Engine(inventory, EngineSettings(deadline_s=0.3, polling=False))
    await engine.start()
    try:
        await engine.connect_all()
        rt = engine.runtimes["b0"]
        async with rt.lock:
            rt.lock.holder = "background convergence"
            engine.set_desired(dict.fromkeys(inventory.all_keys, HALF))
            outcome = await engine.command(inventory.all_keys)
        result = outcome.controllers["b0"]
        assert result.status is Status.FAILED and result.error_kind == "busy", result
        assert result.error == "not sent: the controller stayed busy with background convergence for 0.3 s"
        assert rt.link.state is LinkState.ONLINE
        assert await wait_until(lambda: not rt.pending(), 3.0)  # its supervisor converged it afterwards
    finally:
        await engine.stop()
