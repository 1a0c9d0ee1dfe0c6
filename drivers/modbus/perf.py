"""Measure the Modbus driver's hot path: ``python -m drivers.modbus.perf --controllers 1000``.

Starts the simulated cabinets in separate processes, then times, over the same connections kind:
the driver (all-on / all-off, apply + read-back), the floor (the same frames pre-encoded over
plain streams) and, for comparison, pymodbus's own ``AsyncModbusTcpClient`` sending the same
requests. Prints wall-clock p50/p95 per round and the client process's CPU per request. This is
the driver's own yardstick; ``lightctl bench`` measures the whole engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from drivers.modbus.driver import ModbusDriver
from drivers.modbus.floor import ModbusFloorClient
from drivers.modbus.protocol import Request
from drivers.modbus.settings import ModbusSettings
from drivers.modbus.sim import ModbusSimulator, raise_file_limit
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import OFF, ChannelState

ON = ChannelState(on=True, level=100.0)
USE_UVLOOP = False


def make_controllers(count: int, first: int = 0) -> list[ControllerConfig]:
    return [
        ControllerConfig.model_validate(
            {
                "id": f"cab-{i:05d}",
                "protocol": "modbus",
                "profile": "cabinet-8ch",
                "timeout_s": 5.0,
                "host": "127.0.0.1",
                "port": 10000 + i,
                "channels": [
                    {"id": f"c{n}", "point": n, "luminaires": {"count": 20, "kind": "landscape", "led": True, "watts": 36}}
                    for n in range(1, 9)
                ],
            }
        )
        for i in range(first, first + count)
    ]


async def serve(count: int, first: int) -> None:
    """Child process: simulators for a slice of controllers; endpoints as one JSON line; runs until stdin closes."""
    sim = ModbusSimulator(make_controllers(count, first), any_port=True)
    started = time.perf_counter()
    await sim.start()
    elapsed = time.perf_counter() - started
    print(json.dumps({"startup_s": elapsed, "endpoints": sim.endpoints()}), flush=True)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(json.dumps({"cpu_s": time.process_time()}), flush=True)  # asked for: our CPU so far
    await sim.stop()


def spawn(count: int, processes: int) -> tuple[list[subprocess.Popen[str]], dict[str, Any], list[float]]:
    procs, endpoints, startups = [], {}, []
    share = -(-count // processes)
    for first in range(0, count, share):
        n = min(share, count - first)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "drivers.modbus.perf", "--serve", str(n), "--first", str(first)]
                + (["--uvloop"] if USE_UVLOOP else []),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        endpoints.update(info["endpoints"])
        startups.append(info["startup_s"])
    return procs, endpoints, startups


def sim_cpu(procs: Sequence[subprocess.Popen[str]]) -> float:
    """CPU seconds used so far by all simulator processes."""
    total = 0.0
    for proc in procs:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("cpu\n")
        proc.stdin.flush()
        total += json.loads(proc.stdout.readline())["cpu_s"]
    return total


async def timed(
    rounds: int, one: Callable[[], Awaitable[int]], procs: Sequence[subprocess.Popen[str]]
) -> tuple[list[float], list[float], float, int]:
    walls, cpus, requests, server = [], [], 0, 0.0
    for _ in range(rounds):
        before = sim_cpu(procs)
        cpu, wall = time.process_time(), time.perf_counter()
        requests = await one()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        server += sim_cpu(procs) - before
    return walls, cpus, server / rounds, requests


def report(name: str, walls: Sequence[float], cpus: Sequence[float], server: float, requests: int) -> None:
    ordered = sorted(walls)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    cpu = statistics.median(cpus)
    n = max(1, requests)
    print(
        f"{name:<24} wall p50 {statistics.median(walls):.3f} s  p95 {p95:.3f} s  "
        f"CPU/request: client {cpu / n * 1e6:.0f} µs, simulators {server / n * 1e6:.0f} µs  ({requests} requests)"
    )


async def measure(count: int, rounds: int, processes: int) -> None:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    raise_file_limit()
    procs, endpoints, startups = spawn(count, processes)
    print(f"{count} simulated controllers in {processes} process(es): start-up {max(startups):.2f} s")
    controllers = [
        c.model_copy(update={"settings": ModbusSettings(**endpoints[c.id])}) for c in make_controllers(count)
    ]
    try:
        drivers = [ModbusDriver(c) for c in controllers]
        await asyncio.gather(*(d.connect() for d in drivers))
        for scene, state in (("all-on", ON), ("all-off", OFF)):
            batches = [{ch.id: state for ch in c.channels} for c in controllers]

            async def driver_round(batches: list[dict[str, ChannelState]] = batches) -> int:
                async def one(d: ModbusDriver, batch: dict[str, ChannelState]) -> int:
                    result = await d.apply(batch)
                    await d.read(batch)
                    return result.operations + 1

                return sum(await asyncio.gather(*(one(d, b) for d, b in zip(drivers, batches, strict=True))))

            report(f"driver {scene}", *await timed(rounds, driver_round, procs))

            plans = [(d, [*d.requests(b), d.status_request()]) for d, b in zip(drivers, batches, strict=True)]

            async def link_round(plans: list[tuple[ModbusDriver, list[Request]]] = plans) -> int:
                async def one(d: ModbusDriver, requests: list[Request]) -> int:
                    for r in requests:
                        await d.link.execute(r)
                    return len(requests)

                return sum(await asyncio.gather(*(one(d, rs) for d, rs in plans)))

            report(f"link only {scene}", *await timed(rounds, link_round, procs))

            floors = [ModbusFloorClient(c, b) for c, b in zip(controllers, batches, strict=True)]
            await asyncio.gather(*(f.connect() for f in floors))

            async def floor_round(floors: list[ModbusFloorClient] = floors) -> int:
                return sum(await asyncio.gather(*(f.run() for f in floors)))

            report(f"floor {scene}", *await timed(rounds, floor_round, procs))
            await asyncio.gather(*(f.close() for f in floors))
            await pymodbus_round(controllers, drivers, batches, rounds, scene, procs)
        await asyncio.gather(*(d.close() for d in drivers))
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)


async def pymodbus_round(
    controllers: list[ControllerConfig],
    drivers: list[ModbusDriver],
    batches: list[dict[str, ChannelState]],
    rounds: int,
    scene: str,
    procs: Sequence[subprocess.Popen[str]],
) -> None:
    """The same requests through pymodbus's AsyncModbusTcpClient, to justify the lean link."""
    from pymodbus.client import AsyncModbusTcpClient

    clients = []
    for c in controllers:
        s = c.settings
        clients.append(AsyncModbusTcpClient(s.host, port=s.port, timeout=5, retries=0, reconnect_delay=0))
    await asyncio.gather(*(client.connect() for client in clients))
    plans = [(d.requests(b), d.status_request()) for d, b in zip(drivers, batches, strict=True)]

    async def one(client: AsyncModbusTcpClient, plan: Any) -> int:
        writes, status = plan
        for r in writes:
            if r.function_code == 16:
                rr = await client.write_registers(r.address, list(r.values), device_id=1)
            else:
                rr = await client.write_coils(r.address, [bool(v) for v in r.values], device_id=1)
            assert not rr.isError()
        rr = await client.read_input_registers(status.address, count=status.count, device_id=1)
        assert not rr.isError()
        return len(writes) + 1

    async def round_() -> int:
        return sum(await asyncio.gather(*(one(cl, p) for cl, p in zip(clients, plans, strict=True))))

    report(f"pymodbus client {scene}", *await timed(rounds, round_, procs))
    for client in clients:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--controllers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--sim-processes", type=int, default=1)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--uvloop", action="store_true", help="run both sides on uvloop (if installed)")
    args = parser.parse_args()
    global USE_UVLOOP
    USE_UVLOOP = args.uvloop
    run: Callable[[Any], Any] = asyncio.run
    if args.uvloop:
        import uvloop  # type: ignore[import-not-found]  # not a dependency: an experiment

        run = uvloop.run
    if args.serve is not None:
        run(serve(args.serve, args.first))
    else:
        run(measure(args.controllers, args.rounds, args.sim_processes))


if __name__ == "__main__":
    main()
