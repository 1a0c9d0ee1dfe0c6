"""Measure the OPC UA simulator's start-up and the driver's session set-up:
``python -m drivers.opcua.perf --plcs 200``.

Prints, in this one process: what a stock asyncua ``Server.init()`` costs (the standard address
space built per server), what the shared namespace 0 costs once, what each simulated PLC then
costs, and how long N drivers take to connect and resolve their profile concurrently.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from asyncua import Server

from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.sim import OpcUaSimulator
from drivers.opcua.sim_server import standard_space
from lightctl.config import ControllerConfig


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plcs", type=int, default=200)
    parser.add_argument("--stock", type=int, default=2, help="stock asyncua servers to time, for comparison")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.plcs, args.stock))))


if __name__ == "__main__":
    main()
