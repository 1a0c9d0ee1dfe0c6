"""Simulated field devices in worker processes (``lightctl sim``, ``demo``, benchmarks, tests).

Each worker process loads the config, builds each protocol plugin's simulator for its share of the
controllers and answers a small command protocol over a pipe: inject or clear a fault, count
requests, stop. Spreading the devices over processes keeps the daemon's core free, as in the field.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import multiprocessing
import multiprocessing.connection
import resource
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from drivers.base import Fault, SimulatorHost
from drivers.registry import get_plugin
from lightctl.loop import settle_heap
from lightctl.model.config import Config

STARTUP_TIMEOUT_S = 300.0
CALL_TIMEOUT_S = 30.0


def raise_open_file_limit() -> int:
    """Thousands of simulated devices and their clients need thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class SimulatorError(RuntimeError):
    pass


def _load(source: str | Mapping[str, Any]) -> Any:
    from lightctl.resolve.loading import config_from_data, load_config

    return load_config(source) if isinstance(source, str) else config_from_data(dict(source), source="<generated>")


async def _worker_main(conn: multiprocessing.connection.Connection, source: Any, ids: list[str], any_port: bool) -> None:
    raise_open_file_limit()
    config = _load(source)
    wanted = set(ids)
    by_protocol: dict[str, list[Any]] = defaultdict(list)
    for ctrl in config.controllers():
        if ctrl.id in wanted:
            by_protocol[ctrl.protocol].append(ctrl)
    hosts: dict[str, SimulatorHost] = {}
    owner: dict[str, SimulatorHost] = {}
    try:
        for protocol, controllers in by_protocol.items():
            host = get_plugin(protocol).create_simulator(controllers, any_port=any_port)
            await host.start()
            hosts[protocol] = host
            for ctrl in controllers:
                owner[ctrl.id] = host
        endpoints: dict[str, dict[str, Any]] = {}
        for host in hosts.values():
            endpoints.update({cid: dict(ep) for cid, ep in host.endpoints().items()})
        settle_heap()
        conn.send(("ready", endpoints))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        for host in hosts.values():
            await host.stop()
        return
    loop = asyncio.get_running_loop()
    while True:
        try:
            message = await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):  # the parent is gone
            for host in hosts.values():
                await host.stop()
            return
        verb = message[0]
        try:
            if verb == "stop":
                for host in hosts.values():
                    await host.stop()
                conn.send(("ok", None))
                return
            if verb == "inject":
                _, cid, fault = message
                owner[cid].inject(cid, Fault(**fault))
                conn.send(("ok", None))
            elif verb == "clear":
                _, cid, kind = message
                owner[cid].clear(cid, kind)
                conn.send(("ok", None))
            elif verb == "counts":
                conn.send(("ok", {cid: host.request_count(cid) for cid, host in owner.items()}))
            elif verb == "write_times":
                _, since = message
                conn.send(("ok", {cid: [t for t in host.write_times(cid) if t >= since] for cid, host in owner.items()}))
            elif verb == "cpu":
                conn.send(("ok", time.process_time()))
            elif verb == "kinds":
                conn.send(("ok", {cid: sorted(host.fault_kinds) for cid, host in owner.items()}))
            else:
                conn.send(("error", f"unknown request {verb!r}"))
        except KeyError as exc:
            conn.send(("error", f"no simulated controller {exc}"))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _worker(conn: multiprocessing.connection.Connection, source: Any, ids: list[str], any_port: bool) -> None:
    """A simulator process. It leaves Ctrl-C to its parent, which stops the daemon first and
    then the simulators (a terminal's Ctrl-C reaches the whole process group: simulators dying
    first would leave the daemon's sessions to end in errors). SIGTERM still ends it, which is
    how multiprocessing ends it if the parent exits without stopping it; it also ends by itself
    when its parent is gone."""
    from lightctl.loop import run

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run(_worker_main(conn, source, ids, any_port))


class _Worker:
    def __init__(self, process: multiprocessing.process.BaseProcess, conn: multiprocessing.connection.Connection) -> None:
        self.process = process
        self.conn = conn
        self.lock = threading.Lock()

    def call(self, *message: Any) -> Any:
        with self.lock:
            self.conn.send(message)
            if not self.conn.poll(CALL_TIMEOUT_S):
                raise SimulatorError(f"simulator process {self.process.pid} did not answer {message[0]!r}")
            status, value = self.conn.recv()
        if status != "ok":
            raise SimulatorError(str(value))
        return value


def _pinned(data: Mapping[str, Any], endpoints: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Config data whose controllers in ``endpoints`` are on those endpoints (the settings patches
    :meth:`SimulatorFarm.start` returned), for a process that must bind them again."""
    copied: dict[str, Any] = copy.deepcopy(dict(data))
    for district in copied.get("districts", []):
        for site in district.get("sites", []):
            for ctrl in site.get("controllers", []):
                ctrl.update(endpoints.get(ctrl.get("id"), {}))
    return copied


class SimulatorFarm:
    """Simulators for every controller of a config, in ``processes`` workers.

    ``source`` is the config file path or the parsed data ``config`` was validated from (each
    worker validates it again). With ``any_port`` every device binds a free port; ``start()`` returns the settings
    patches (``Config.with_controller_settings``) that reach them.
    """

    def __init__(
        self,
        source: str | Path | Mapping[str, Any],
        config: Config,
        *,
        processes: int = 1,
        any_port: bool = False,
    ) -> None:
        self.source: str | Mapping[str, Any] = str(source) if isinstance(source, Path) else source
        self.any_port = any_port
        # Each protocol's controllers are spread evenly over the workers.
        shares: list[list[str]] = [[] for _ in range(max(1, processes))]
        by_protocol: dict[str, list[str]] = defaultdict(list)
        for ctrl in config.controllers():
            by_protocol[ctrl.protocol].append(ctrl.id)
        slot = 0
        for ids in by_protocol.values():
            for cid in ids:
                shares[slot % len(shares)].append(cid)
                slot += 1
        self.shares = [share for share in shares if share]
        self.workers: list[_Worker] = []
        self.owner: dict[str, _Worker] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}

    async def start(self) -> dict[str, dict[str, Any]]:
        context = multiprocessing.get_context("spawn")
        for share in self.shares:
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, self.source, share, self.any_port), daemon=True)
            process.start()
            child.close()
            worker = _Worker(process, parent)
            self.workers.append(worker)
            for cid in share:
                self.owner[cid] = worker
        endpoints: dict[str, dict[str, Any]] = {}
        try:
            answers = await asyncio.gather(*(asyncio.to_thread(self._await_ready, w) for w in self.workers))
        except BaseException:
            await self.stop()
            raise
        for answer in answers:
            endpoints.update(answer)
        self.endpoints = endpoints
        return endpoints

    @staticmethod
    def _await_ready(worker: _Worker) -> dict[str, dict[str, Any]]:
        if not worker.conn.poll(STARTUP_TIMEOUT_S):
            raise SimulatorError(f"simulator process {worker.process.pid} did not start in {STARTUP_TIMEOUT_S:g} s")
        status, value = worker.conn.recv()
        if status != "ready":
            raise SimulatorError(f"simulator process failed to start: {value}")
        result: dict[str, dict[str, Any]] = value
        return result

    def _worker_for(self, controller_id: str) -> _Worker:
        worker = self.owner.get(controller_id)
        if worker is None:
            raise SimulatorError(f"no simulated controller {controller_id!r}")
        return worker

    def kill_process(self, controller_id: str) -> list[str]:
        """SIGKILL the simulator process that runs ``controller_id``, as a crash would end it;
        returns every controller it ran (all gone with it)."""
        worker = self._worker_for(controller_id)
        worker.process.kill()
        worker.process.join(timeout=10)
        return [cid for cid, w in self.owner.items() if w is worker]

    async def restart_process(self, controller_id: str) -> None:
        """Start again, on the same endpoints, the simulator process that ran ``controller_id``
        (after :meth:`kill_process`): a device rebooted, its state as at power-on."""
        dead = self._worker_for(controller_id)
        if dead.process.is_alive():
            raise SimulatorError(f"the simulator process of {controller_id!r} is running")
        share = [cid for cid, w in self.owner.items() if w is dead]
        if isinstance(self.source, str):
            raise SimulatorError("a farm started from a config file restarts no process (its endpoints are the file's)")
        source = _pinned(self.source, {cid: self.endpoints[cid] for cid in share}) if self.any_port else self.source
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, source, share, False), daemon=True)
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self.workers[self.workers.index(dead)] = worker
        for cid in share:
            self.owner[cid] = worker
        await asyncio.to_thread(self._await_ready, worker)

    async def inject(self, controller_id: str, fault: Fault) -> None:
        await asyncio.to_thread(self._worker_for(controller_id).call, "inject", controller_id, asdict(fault))

    async def clear(self, controller_id: str, kind: str | None = None) -> None:
        await asyncio.to_thread(self._worker_for(controller_id).call, "clear", controller_id, kind)

    async def request_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for answer in await asyncio.gather(*(asyncio.to_thread(w.call, "counts") for w in self.workers)):
            counts.update(answer)
        return counts

    async def cpu_seconds(self) -> float:
        """CPU time the simulator processes have used so far, together."""
        answers = await asyncio.gather(*(asyncio.to_thread(w.call, "cpu") for w in self.workers))
        return float(sum(answers))

    async def write_times(self, since: float = 0.0) -> dict[str, list[float]]:
        """Per controller, the monotonic instants its simulator received writes, from ``since``."""
        times: dict[str, list[float]] = {}
        for answer in await asyncio.gather(*(asyncio.to_thread(w.call, "write_times", since) for w in self.workers)):
            times.update(answer)
        return times

    async def fault_kinds(self) -> dict[str, list[str]]:
        kinds: dict[str, list[str]] = {}
        for answer in await asyncio.gather(*(asyncio.to_thread(w.call, "kinds") for w in self.workers)):
            kinds.update(answer)
        return kinds

    async def stop(self) -> None:
        def stop_one(worker: _Worker) -> None:
            if worker.process.is_alive():
                with contextlib.suppress(SimulatorError, OSError, EOFError):
                    worker.call("stop")
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)

        await asyncio.gather(*(asyncio.to_thread(stop_one, w) for w in self.workers))
        self.workers.clear()
        self.owner.clear()
