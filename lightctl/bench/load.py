"""``lightctl bench load``: the one switch through the API while console clients watch.

The daemon and its API run in this process, the simulators in worker processes, and the clients
in one more process of their own (as browsers would be elsewhere): each client holds the
WebSocket open, fetches ``/api/v1/status`` when it connects and every ``STATUS_EVERY_S`` after,
and counts the events it receives. The switch is timed through the API (``POST
/api/v1/scenes/.../apply``) with no client connected, then again with every client connected, in
the same run; the report gives both, their ratio, and for every client whether it stayed
connected and received every controller's result of every switch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from lightctl.bench.runner import percentile, start_bench
from lightctl.runtime.credentials import new_local_credential
from lightctl.runtime.daemon import Daemon
from web.app import bound_port, serve

STATUS_EVERY_S = 5.0
REQUEST_TIMEOUT_S = 120.0


@dataclass
class ClientTally:
    connected: bool = False
    dropped: bool = False
    frames: int = 0
    results: Counter[int] = field(default_factory=Counter)
    """Result events per command id."""
    commands: int = 0
    overflows: int = 0
    status_fetches: int = 0
    status_failures: int = 0


async def _client(base: str, token: str, tally: ClientTally, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:

        async def poll_status() -> None:
            while not stop.is_set():
                try:
                    async with session.get(f"{base}/api/v1/status", timeout=aiohttp.ClientTimeout(total=30)) as response:
                        await response.read()
                        tally.status_fetches += response.status == 200
                        tally.status_failures += response.status != 200
                except (aiohttp.ClientError, TimeoutError):
                    tally.status_failures += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)

        async with session.ws_connect(f"{base}/api/v1/ws", heartbeat=30) as ws:
            tally.connected = True
            poller = asyncio.create_task(poll_status())
            try:
                while not stop.is_set():
                    try:
                        message = await asyncio.wait_for(ws.receive(), 0.5)
                    except TimeoutError:
                        continue
                    if message.type != aiohttp.WSMsgType.TEXT:
                        tally.dropped = not stop.is_set()
                        break
                    tally.frames += 1
                    for event in json.loads(message.data):
                        kind = event.get("type")
                        if kind == "result":
                            tally.results[event["command_id"]] += 1
                        elif kind == "command":
                            tally.commands += 1
                        elif kind == "overflow":
                            tally.overflows += 1
            finally:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)


async def _clients(base: str, token: str, count: int, conn: Connection) -> None:
    tallies = [ClientTally() for _ in range(count)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_client(base, token, t, stop)) for t in tallies]
    for _ in range(200):
        if all(t.connected for t in tallies):
            break
        await asyncio.sleep(0.05)
    conn.send("connected")
    await asyncio.to_thread(conn.recv)  # the bench says when the switching is over
    await asyncio.sleep(1.0)  # the last events on their way
    stop.set()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [repr(d) for d in done if isinstance(d, BaseException)]
    conn.send(
        {
            "clients": [
                {"connected": t.connected, "dropped": t.dropped, "frames": t.frames, "results": dict(t.results),
                 "commands": t.commands, "overflows": t.overflows, "status_fetches": t.status_fetches,
                 "status_failures": t.status_failures}
                for t in tallies
            ],
            "errors": errors,
        }
    )


def clients_process(base: str, token: str, count: int, conn: Connection) -> None:
    """The clients' process: its own event loop, away from the daemon's CPU."""
    asyncio.run(_clients(base, token, count, conn))


async def _switch(session: aiohttp.ClientSession, base: str, scene: str) -> dict[str, Any]:
    async with session.post(f"{base}/api/v1/scenes/{scene}/apply", json={"target": "*", "until": "none"}) as response:
        result: dict[str, Any] = await response.json()
        if response.status != 200:
            raise RuntimeError(f"the switch was refused: {result}")
        return result


async def run_load_bench(args: argparse.Namespace) -> int:
    setup = await start_bench(args)
    if setup is None:
        return 2
    farm, config, count = setup.farm, setup.config, args.controllers
    report: dict[str, Any] = {"controllers": count, "clients": args.clients, "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "bench.db"
        daemon = Daemon(config, database=database)
        token = new_local_credential()  # the clients act as the local caller: no sign-in to time
        runner = None
        process = None
        try:
            await daemon.start()
            runner = await serve(daemon, "127.0.0.1", 0, local_credential=token)
            base = f"http://127.0.0.1:{bound_port(runner)}"
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
                alone = [await _switch(session, base, ("all-on", "all-off")[i % 2]) for i in range(args.rounds)]
                parent, child = multiprocessing.get_context("spawn").Pipe()
                process = multiprocessing.get_context("spawn").Process(
                    target=clients_process, args=(base, token, args.clients, child), daemon=True
                )
                process.start()
                if await asyncio.to_thread(parent.poll, 60) and parent.recv() == "connected":
                    print(f"{args.clients} clients connected", flush=True)
                watched = [await _switch(session, base, ("all-on", "all-off")[i % 2]) for i in range(args.rounds)]
                parent.send("done")
                tallies = await asyncio.to_thread(parent.recv) if await asyncio.to_thread(parent.poll, 120) else None
        finally:
            if process is not None:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
            if runner is not None:
                await runner.cleanup()
            await daemon.stop()
            await farm.stop()
    report.update(_summary(alone, watched, tallies, count))
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return 0 if report["clients_dropped"] == 0 and report["clients_missing_results"] == 0 else 1


def _summary(alone: list[dict[str, Any]], watched: list[dict[str, Any]], tallies: Any, count: int) -> dict[str, Any]:
    def p50(results: list[dict[str, Any]]) -> float:
        return float(statistics.median(float(r["elapsed_s"]) for r in results))

    confirmed = sum(r["summary"]["confirmed"] for r in (*alone, *watched))
    out: dict[str, Any] = {
        "switch_p50_s_alone": round(p50(alone), 3),
        "switch_p50_s_watched": round(p50(watched), 3),
        "switch_p95_s_watched": round(percentile([r["elapsed_s"] for r in watched], 0.95), 3),
        "ratio_watched_to_alone": round(p50(watched) / p50(alone), 2),
        "controllers_not_confirmed": count * (len(alone) + len(watched)) - confirmed,
    }
    if tallies is None:
        out.update(clients_dropped=-1, clients_missing_results=-1, client_errors=["the clients' process did not report"])
        return out
    commands = [r["command_id"] for r in watched]
    clients = tallies["clients"]
    missing = [c for c in clients if any(c["results"].get(str(cid), c["results"].get(cid, 0)) < count for cid in commands)]
    out.update(
        clients_dropped=sum(1 for c in clients if c["dropped"] or not c["connected"]),
        clients_missing_results=len(missing),
        overflows=sum(c["overflows"] for c in clients),
        frames_per_client_p50=statistics.median(c["frames"] for c in clients),
        status_fetches=sum(c["status_fetches"] for c in clients),
        status_failures=sum(c["status_failures"] for c in clients),
        client_errors=tallies["errors"],
    )
    return out


def _print(r: dict[str, Any]) -> None:
    print(f"one switch through the API, {r['controllers']} controllers, {r['rounds']} rounds, {r['clients']} console clients")
    print(f"  switch p50 with no client:        {r['switch_p50_s_alone']:.3f} s")
    print(f"  switch p50 with the clients:      {r['switch_p50_s_watched']:.3f} s (p95 {r['switch_p95_s_watched']:.3f} s)")
    print(f"  ratio watched / alone:            {r['ratio_watched_to_alone']:.2f}")
    print(f"  controllers not confirmed:        {r['controllers_not_confirmed']}")
    print(f"  clients dropped:                  {r['clients_dropped']}")
    print(f"  clients missing a result:         {r['clients_missing_results']}")
    if "overflows" in r:
        print(f"  overflows: {r['overflows']}, frames per client p50: {r['frames_per_client_p50']}, "
              f"status fetches {r['status_fetches']} ({r['status_failures']} failed)")
    for error in r.get("client_errors", []):
        print(f"  client error: {error}")

