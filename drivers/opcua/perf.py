"""Measure the OPC UA simulator's start-up and the driver's session set-up:
``python -m drivers.opcua.perf --plcs 200``; and what a show's beat costs per PLC:
``python -m drivers.opcua.perf --fires 300``.

Prints, in this one process: what a stock asyncua ``Server.init()`` costs (the standard address
space built per server), what the shared namespace 0 costs once, what each simulated PLC then
costs, and how long N drivers take to connect and resolve their profile concurrently. With
``--fires``: the CPU time of ``PreparedSend.fire()`` against a simulated PLC (the Write's parameters
encoded ahead, the message built and written at the fire), and for comparison what asyncua's own
encoder spends on the same WriteRequest, which the pre-encoding saves at each send.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from typing import Any

from asyncua import Server, ua
from asyncua.ua.ua_binary import struct_to_binary

from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.sim import OpcUaSimulator
from drivers.opcua.sim_server import standard_space
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelState


def make_controllers(count: int) -> list[ControllerConfig]:
    from drivers.opcua import PLUGIN
    from drivers.opcua.bench import controller_data

    out = []
    for i in range(count):
        ctrl = ControllerConfig.model_validate(controller_data(i))
        out.append(ctrl.model_copy(update={"settings": PLUGIN.settings_model.model_validate(ctrl.settings)}))
    return out


async def measure(plcs: int, stock: int) -> dict[str, Any]:
    result: dict[str, Any] = {"plcs": plcs}
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(stock):
        await Server().init()
    if stock:
        result["stock_server_init_cpu_s"] = round((time.process_time() - cpu) / stock, 3)
    cpu, wall = time.process_time(), time.perf_counter()
    await standard_space()
    result["shared_namespace0_cpu_s"] = round(time.process_time() - cpu, 3)
    controllers = make_controllers(plcs)
    sim = OpcUaSimulator(controllers, any_port=True)
    cpu, wall = time.process_time(), time.perf_counter()
    await sim.start()
    result["plcs_start_wall_s"] = round(time.perf_counter() - wall, 3)
    result["per_plc_cpu_ms"] = round((time.process_time() - cpu) / plcs * 1000, 2)
    try:
        endpoints = sim.endpoints()
        drivers = [
            OpcUaDriver(c.model_copy(update={"settings": c.settings.model_copy(update=dict(endpoints[c.id]))}))
            for c in controllers
        ]
        wall = time.perf_counter()
        await asyncio.gather(*(d.connect() for d in drivers))
        result["connect_and_resolve_all_wall_s"] = round(time.perf_counter() - wall, 3)
        await asyncio.gather(*(d.close() for d in drivers))
    finally:
        await sim.stop()
    return result


async def measure_fires(count: int) -> dict[str, Any]:
    """``fire()`` of a batch of every zone at a level, one after the other on one PLC."""
    (controller,) = make_controllers(1)
    sim = OpcUaSimulator([controller], any_port=True)
    await sim.start()
    driver = OpcUaDriver(
        controller.model_copy(update={"settings": controller.settings.model_copy(update=dict(sim.endpoints()[controller.id]))})
    )
    fires: list[float] = []
    encodes: list[float] = []
    try:
        await driver.connect()
        resolved = driver.resolved
        assert resolved is not None
        # every zone but one: a Write (all zones at one level may be a stored scene's Call)
        batches = [{ch.id: ChannelState(True, float(level)) for ch in controller.channels[1:]} for level in range(10, 90, 10)]
        gc.disable()
        for i in range(count):
            batch = batches[i % len(batches)]
            prepared = driver.prepare(batch)
            assert prepared is not None
            started = time.perf_counter()
            future = prepared.fire()
            fires.append(time.perf_counter() - started)
            assert future is not None
            await future
            request = ua.WriteRequest(Parameters=ua.WriteParameters(NodesToWrite=driver.compile(batch, resolved).writes))
            started = time.perf_counter()
            struct_to_binary(request)
            encodes.append(time.perf_counter() - started)
    finally:
        gc.enable()
        await driver.close()
        await sim.stop()
    return {
        "fires": count,
        "fire_median_us": round(statistics.median(fires) * 1e6, 1),
        "fire_p90_us": round(statistics.quantiles(fires, n=10)[-1] * 1e6, 1),
        "asyncua_encode_median_us": round(statistics.median(encodes) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plcs", type=int, default=200)
    parser.add_argument("--stock", type=int, default=2, help="stock asyncua servers to time, for comparison")
    parser.add_argument("--fires", type=int, default=0, help="time this many prepared fires instead")
    args = parser.parse_args()
    if args.fires:
        print(json.dumps(asyncio.run(measure_fires(args.fires))))
    else:
        print(json.dumps(asyncio.run(measure(args.plcs, args.stock))))


if __name__ == "__main__":
    main()
