"""Network faults between the daemon and its devices: a fault-injecting proxy per endpoint.

Tests and benchmarks put a :class:`ChaosNet` between the drivers and the simulators (or real
devices): a TCP proxy for Modbus, OPC UA and the DALI gateways, a UDP one for BACnet/IP. Each
controller's proxies share one :class:`Condition`, switched at run time, which says what the
network does to its traffic:

``pass``     everything goes through.
``silent``   nothing goes through either way (a cut cable: connections open, nothing answers).
``delay``    each reply is held ``value`` seconds (a device answering at twice its timeout).
``garbage``  each reply is replaced by as many random bytes.
``cut``      each request reaches the device, then the connection is reset before its reply
             (UDP: the reply is lost): the device may have acted on it.
``half``     the first half of each reply arrives, then the connection is closed (UDP: half a
             datagram).

The simulators' own faults (offline, slow, error replies...) stay in the simulators; these are
what the network does, and need no change to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from drivers.bacnet.settings import BacnetSettings
from drivers.base import settings_of
from drivers.dali.model import dali_settings, line_port, load_profiles
from drivers.modbus.settings import ModbusSettings
from drivers.opcua.settings import OpcUaSettings
from lightctl.model.config import Config
from lightctl.model.installation import ControllerConfig

CONNECT_TIMEOUT_S = 5.0
READ_CHUNK = 65536


class Mode(StrEnum):
    PASS = "pass"
    SILENT = "silent"
    DELAY = "delay"
    GARBAGE = "garbage"
    CUT = "cut"
    HALF = "half"


@dataclass(slots=True)
class Condition:
    """What the network does to one controller's traffic now (read at every chunk or datagram)."""

    mode: Mode = Mode.PASS
    value: float = 0.0
    """``delay``: seconds each reply is held."""
    rng: random.Random = field(default_factory=lambda: random.Random(18))
    requests: int = 0
    """Chunks (TCP) or datagrams (UDP) the daemon sent through, whatever the mode."""
    connections: int = 0
    """TCP connections the daemon opened (a reconnect opens one)."""

    def garbage(self, size: int) -> bytes:
        return self.rng.randbytes(max(1, size))


# --------------------------------------------------------------------------- TCP


class TcpProxy:
    """One listening port in front of one TCP endpoint."""

    def __init__(self, condition: Condition, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.condition = condition
        self.upstream = upstream
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(client_writer)
        self.condition.connections += 1
        up_writer: asyncio.StreamWriter | None = None
        try:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except (OSError, TimeoutError):
                client_writer.transport.abort()  # the device refuses: so does the proxy
                return
            self._writers.add(up_writer)
            pumps = [
                asyncio.create_task(self._requests(client_reader, up_writer, client_writer)),
                asyncio.create_task(self._replies(up_reader, client_writer)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the proxy stops (asyncio's stream server logs a handler that ends cancelled)
        finally:
            for writer in (client_writer, up_writer):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.transport.abort()
            self._connections.discard(task)

    async def _requests(
        self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter, client: asyncio.StreamWriter
    ) -> None:
        condition = self.condition
        while data := await reader.read(READ_CHUNK):
            condition.requests += 1
            mode = condition.mode
            if mode is Mode.SILENT:
                continue
            upstream.write(data)
            await upstream.drain()
            if mode is Mode.CUT:
                await asyncio.sleep(0.01)  # on its way to the device, then the link breaks
                client.transport.abort()
                return

    async def _replies(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        condition = self.condition
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        releasing: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(READ_CHUNK):
                mode = condition.mode
                if mode in (Mode.SILENT, Mode.CUT):
                    continue
                if mode is Mode.DELAY or releasing is not None:  # once held, replies stay in order
                    if releasing is None:
                        releasing = asyncio.create_task(_release(held, client))
                    held.put_nowait((loop.time() + (condition.value if mode is Mode.DELAY else 0.0), data))
                    continue
                if mode is Mode.GARBAGE:
                    data = condition.garbage(len(data))
                elif mode is Mode.HALF:
                    client.write(data[: max(1, len(data) // 2)])
                    await client.drain()
                    client.close()
                    return
                client.write(data)
                await client.drain()
            if releasing is not None:
                await held.join()
        finally:
            if releasing is not None:
                releasing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await releasing


async def _release(held: asyncio.Queue[tuple[float, bytes]], client: asyncio.StreamWriter) -> None:
    """Delayed replies, each at its time, in order."""
    loop = asyncio.get_running_loop()
    while True:
        due, data = await held.get()
        await asyncio.sleep(max(0.0, due - loop.time()))
        if not client.is_closing():
            client.write(data)
        held.task_done()


# --------------------------------------------------------------------------- UDP


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, received: Callable[[bytes, Any], None]) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received(data, addr)


class UdpProxy:
    """One UDP port in front of one UDP endpoint. Each client address gets a socket of its own
    towards the device, so that what the device sends it (replies, COV notifications) goes back
    to that client, from the proxy's address."""

    def __init__(self, condition: Condition, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.condition = condition
        self.upstream = upstream
        self.host = host
        self.port = 0
        self._front: asyncio.DatagramTransport | None = None
        self._backs: dict[Any, asyncio.DatagramTransport] = {}
        self._waiting: dict[Any, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._front, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self._request), local_addr=(self.host, 0))
        self.port = self._front.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for back in self._backs.values():
            back.close()
        self._backs.clear()
        if self._front is not None:
            self._front.close()
            self._front = None

    def _request(self, data: bytes, client: Any) -> None:
        condition = self.condition
        condition.requests += 1
        if condition.mode is Mode.SILENT:
            return
        back = self._backs.get(client)
        if back is not None:
            back.sendto(data)
            return
        waiting = self._waiting.setdefault(client, [])
        waiting.append(data)
        if len(waiting) == 1:
            task = asyncio.get_running_loop().create_task(self._open_back(client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _open_back(self, client: Any) -> None:
        loop = asyncio.get_running_loop()
        back, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(lambda data, _addr: self._reply(data, client)),
            local_addr=(self.host, 0),
            remote_addr=self.upstream,
        )
        self._backs[client] = back
        for data in self._waiting.pop(client, []):
            back.sendto(data)

    def _reply(self, data: bytes, client: Any) -> None:
        condition, front = self.condition, self._front
        if front is None:
            return
        mode = condition.mode
        if mode in (Mode.SILENT, Mode.CUT):
            return
        if mode is Mode.GARBAGE:
            data = condition.garbage(len(data))
        elif mode is Mode.HALF:
            data = data[: max(1, len(data) // 2)]
        elif mode is Mode.DELAY:
            loop = asyncio.get_running_loop()
            if len(self._timers) > 1000:  # forget the ones that have fired
                self._timers = {t for t in self._timers if t.when() > loop.time()}
            self._timers.add(loop.call_later(condition.value, self._send_late, data, client))
            return
        front.sendto(data, client)

    def _send_late(self, data: bytes, client: Any) -> None:
        if self._front is not None:
            self._front.sendto(data, client)


# --------------------------------------------------------------------------- where each protocol connects


@dataclass(frozen=True, slots=True)
class Route:
    """The endpoints a controller's driver connects to, and how its settings point at new ones."""

    udp: bool
    upstreams: Sequence[tuple[str, int]]
    settings: Callable[[str, Sequence[int]], dict[str, Any]]
    """(proxy host, proxy port per upstream) -> the settings patch that reaches the proxies."""


def _modbus(ctrl: ControllerConfig) -> Route:
    s = settings_of(ctrl, ModbusSettings)
    return Route(False, [(s.host, s.port)], lambda host, ports: {"host": host, "port": ports[0]})


def _opcua(ctrl: ControllerConfig) -> Route:
    s = settings_of(ctrl, OpcUaSettings)
    path = urlparse(s.url).path
    return Route(
        False, [s.host_port], lambda host, ports: {"endpoint": f"opc.tcp://{host}:{ports[0]}{path}", "host": None, "port": None}
    )


def _dali(ctrl: ControllerConfig) -> Route:
    s = dali_settings(ctrl)
    profile = load_profiles().get(ctrl.profile)
    if s.gateway == "daliserver":
        lines = [line.line for line in s.lines]
        return Route(
            False,
            [(s.host, line_port(s, profile, line)) for line in s.lines],
            lambda host, ports: {"host": host, "ports": dict(zip(lines, ports, strict=True))},
        )
    port = s.port or (profile.default_port if profile else 80)
    return Route(False, [(s.host, port)], lambda host, ports: {"host": host, "port": ports[0]})


def _bacnet(ctrl: ControllerConfig) -> Route:
    s = settings_of(ctrl, BacnetSettings)
    return Route(True, [(s.host, s.port)], lambda host, ports: {"address": f"{host}:{ports[0]}"})


ROUTES: Mapping[str, Callable[[ControllerConfig], Route]] = {
    "modbus": _modbus,
    "opcua": _opcua,
    "dali": _dali,
    "bacnet": _bacnet,
}


class ChaosNet:
    """Proxies in front of some controllers' endpoints, one :class:`Condition` per controller."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.conditions: dict[str, Condition] = {}
        self._proxies: list[TcpProxy | UdpProxy] = []

    async def front(self, config: Config, controller_ids: Iterable[str] | None = None) -> Config:
        """Start proxies for these controllers (default: all) and return the config that reaches
        the devices through them."""
        wanted = None if controller_ids is None else set(controller_ids)
        patches: dict[str, dict[str, Any]] = {}
        for ctrl in config.controllers():
            if wanted is not None and ctrl.id not in wanted:
                continue
            route = ROUTES[ctrl.protocol](ctrl)
            condition = self.conditions.setdefault(ctrl.id, Condition())
            ports = []
            for upstream in route.upstreams:
                proxy = (UdpProxy if route.udp else TcpProxy)(condition, upstream, self.host)
                await proxy.start()
                self._proxies.append(proxy)
                ports.append(proxy.port)
            patches[ctrl.id] = route.settings(self.host, ports)
        return config.with_controller_settings(patches)

    def set(self, controller_id: str, mode: Mode | str, value: float = 0.0) -> None:
        condition = self.conditions[controller_id]
        condition.mode, condition.value = Mode(mode), value

    def clear(self, controller_id: str | None = None) -> None:
        for cid in [controller_id] if controller_id is not None else list(self.conditions):
            self.set(cid, Mode.PASS)

    async def close(self) -> None:
        await asyncio.gather(*(proxy.stop() for proxy in self._proxies), return_exceptions=True)
        self._proxies.clear()
