"""Simulated DALI gateways speaking both transports, with real bus timing per line.

A line carries one transaction at a time and each takes its real time at 1,200 baud: a 16-bit
forward frame with the settling time after it is about 31 ms, with a backward frame about 47 ms.
Lines are independent, so 100 gateways x 2 lines run in parallel in one process: waiting is a
sleep, and gear are evaluated lazily (see sim_gear).

Faults: ``offline`` (sessions refused and dropped), ``slow`` (value = extra seconds per frame),
``error`` (the gateway cannot put frames on the bus: no bus power, a short; daliserver answers every
request with status 255, the WebSocket gateway with result 1, "no bus voltage"), ``latency`` (value
= the round trip between client and gateway in seconds, 0.15 if unset: requests reach the gateway
half of it after they were sent, replies the client half of it after they left; what the gateway
queued goes on the bus back to back, as a real gateway's queue does), ``lamp_failure`` /
``gear_failure`` / ``gear_missing`` (value = fraction of a channel's gear, all if unset),
``foreign_frame`` (value = how many frames another master slips in before our next replies).

The gear keep IEC 62386-102's 100 ms window for send-twice commands (sim_gear.py), measured on the
bus: a pair sent one reply after the other over a gateway with a long round trip is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import WSMsgType, web
from dali.frame import ForwardFrame

from drivers.base import Fault
from drivers.dali import lunatone
from drivers.dali.daliserver import STATUS_ANSWER, STATUS_FOREIGN, STATUS_FRAMING_ERROR, STATUS_NO_ANSWER
from drivers.dali.frames import Reply, ReplyKind
from drivers.dali.model import dali_settings, line_port, load_profiles, parse_addresses, topology
from drivers.dali.sim_gear import DEVICE_TYPE_COLOUR, DEVICE_TYPE_LED, Gear, SimLine
from drivers.simturns import turns
from lightctl.model.installation import ControllerConfig

FRAME_S = 0.031
"""16-bit forward frame (19 bit times at 1,200 baud, 15.8 ms) and the settling time after it."""
FRAME_24_S = 0.038
QUERY_S = 0.047
"""Forward frame, the gear's answer delay, an 8-bit backward frame and settling."""
FOREIGN_FRAME = 0xFE
"""The byte daliserver reports for a frame from another master (its low byte)."""
FAULT_KINDS = frozenset(
    {"offline", "slow", "error", "latency", "lamp_failure", "gear_failure", "gear_missing", "foreign_frame"}
)
DEFAULT_LATENCY_S = 0.15
GEAR_FAULTS = {"lamp_failure": "lamp_failure", "gear_failure": "gear_failure", "gear_missing": "missing"}


class SimGateway:
    """The device model behind either transport: lines of gear, bus timing and faults."""

    def __init__(self, controller: ControllerConfig, *, timing: bool = True) -> None:
        self.controller = controller
        self.settings = dali_settings(controller)
        self.timing = timing
        self.topology = topology(controller)
        self.lines: dict[int, SimLine] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._free_at: dict[int, float] = {}
        """When each line's last transaction ended (time.monotonic)."""
        self.faults: dict[str, Fault] = {}
        self._foreign: dict[int, int] = {}
        watts = _watts_per_gear(controller)
        for line_settings in self.settings.lines:
            number = line_settings.line
            topo = self.topology[number]
            gear = {}
            for addr in topo.gear:
                groups = sum(1 << g for g, members in topo.groups.items() if addr in members)
                dtype = DEVICE_TYPE_COLOUR if addr in topo.colour_gear else DEVICE_TYPE_LED
                gear[addr] = Gear(addr, groups=groups, device_type=dtype, watts=watts.get((number, addr), 0.0))
            self.lines[number] = SimLine(number, gear)
            self._locks[number] = asyncio.Lock()

    @property
    def frames(self) -> int:
        return sum(line.frames for line in self.lines.values())

    def frames_per_line(self) -> dict[int, int]:
        return {n: line.frames for n, line in self.lines.items()}

    async def transact(self, line: int, frame: ForwardFrame, arrived: float | None = None) -> tuple[Reply, int]:
        """Put ``frame`` on the line; returns the reply and the foreign frames seen before it.
        ``arrived``: when the gateway read the request (time.monotonic); the frame goes on the bus
        then, or when the line's previous transaction ends, whichever is later. The simulator's
        own queueing of work (drivers/simturns.py) is not a delay a real gateway would add."""
        sim = self.lines[line]
        async with self._locks[line]:
            now = time.monotonic() if arrived is None else max(arrived, self._free_at.get(line, 0.0))
            foreign = self._foreign.pop(line, 0)
            before = sim.frames
            reply = sim.execute(frame, now)
            assert sim.frames == before + 1
            slow = self.faults.get("slow")
            delay = (slow.value or 0.0) if slow else 0.0
            if self.timing:
                delay += self._duration(frame, reply) + foreign * FRAME_24_S
            self._free_at[line] = now + delay  # the bus's own time: a queued frame follows at once
            if delay > 0:
                await asyncio.sleep(delay)
        return reply, foreign

    @property
    def bus_down(self) -> bool:
        return "error" in self.faults

    def one_way_s(self) -> float:
        """Half the round trip between a client and this gateway (the ``latency`` fault)."""
        latency = self.faults.get("latency")
        if latency is None:
            return 0.0
        return (DEFAULT_LATENCY_S if latency.value is None else latency.value) / 2

    @staticmethod
    def _duration(frame: ForwardFrame, reply: Reply) -> float:
        base = FRAME_24_S if len(frame) == 24 else FRAME_S
        return QUERY_S if reply.kind is not ReplyKind.NONE else base

    # ------------------------------------------------------------------ faults

    def inject(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown DALI fault {fault.kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        if fault.kind in GEAR_FAULTS:
            for gear in self._fault_gear(fault):
                setattr(gear, GEAR_FAULTS[fault.kind], True)
            return
        if fault.kind == "foreign_frame":
            count = int(fault.value or 1)
            for line in self._lines_of(fault.channel):
                self._foreign[line] = self._foreign.get(line, 0) + count
            return
        self.faults[fault.kind] = fault

    def clear(self, kind: str | None = None) -> None:
        for attr_kind, attr in GEAR_FAULTS.items():
            if kind in (None, attr_kind):
                for line in self.lines.values():
                    for gear in line.gear.values():
                        setattr(gear, attr, False)
        if kind in (None, "foreign_frame"):
            self._foreign.clear()
        if kind is None:
            self.faults.clear()
        else:
            self.faults.pop(kind, None)

    def _lines_of(self, channel: str | None) -> list[int]:
        if channel is None:
            return list(self.lines)
        return [n for n, topo in self.topology.items() if channel in topo.channels]

    def _fault_gear(self, fault: Fault) -> list[Gear]:
        if fault.channel is None:
            return [g for line in self.lines.values() for g in line.gear.values()]
        for number, topo in self.topology.items():
            if fault.channel in topo.members:
                members = topo.members[fault.channel]
                count = len(members) if fault.value is None else math.ceil(len(members) * fault.value)
                return [self.lines[number].gear[a] for a in members[:count]]
        raise KeyError(f"{self.controller.id} has no channel {fault.channel!r}")

    def power_w(self) -> float:
        now = time.monotonic()
        return sum(line.power_w(now) for line in self.lines.values())


def _watts_per_gear(controller: ControllerConfig) -> dict[tuple[int, int], float]:
    """A channel's rated watts shared evenly over the gear it reaches."""
    out: dict[tuple[int, int], float] = {}
    for number, topo in topology(controller).items():
        for channel_id, members in topo.members.items():
            if members:
                share = controller.channel(channel_id).rated_w / len(members)
                for addr in members:
                    out[(number, addr)] = out.get((number, addr), 0.0) + share
    return out


# --------------------------------------------------------------------------- daliserver endpoint


class DaliserverEndpoint:
    """One daliserver TCP endpoint per line (daliserver drives one bus)."""

    def __init__(self, gateway: SimGateway, line: int, host: str, port: int) -> None:
        self.gateway, self.line, self.host, self.port = gateway, line, host, port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_sessions()
        handlers = [t for t in self._handlers if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.gather(*handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    def drop_sessions(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests are read as they come and stamped with their arrival at the gateway; the
        gateway works through them in order, each frame on the bus at its arrival or when the
        line frees, whichever is later (two requests written together go out back to back)."""
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        arrivals: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue()
        receiving = asyncio.create_task(self._receive(reader, arrivals))
        self._handlers.add(receiving)
        loop = asyncio.get_running_loop()
        try:
            while "offline" not in self.gateway.faults:
                item = await arrivals.get()
                if item is None:
                    break
                request, arrived = item
                if request[0] != 2 or request[1] != 0:
                    break
                if (early := arrived - time.monotonic()) > 0:
                    await asyncio.sleep(early)
                await turns().wait()
                out = await self._answer(request, arrived)
                if (one_way := self.gateway.one_way_s()) > 0:
                    loop.call_later(one_way, _write_unless_closed, writer, out)
                else:
                    writer.write(out)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went, or the gateway stops (asyncio's stream server logs a cancelled handler)
        finally:
            receiving.cancel()
            self._handlers.discard(receiving)
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            writer.close()

    async def _receive(self, reader: asyncio.StreamReader, arrivals: asyncio.Queue[tuple[bytes, float] | None]) -> None:
        try:
            while True:
                request = await reader.readexactly(4)
                arrivals.put_nowait((request, time.monotonic() + self.gateway.one_way_s()))
        except (asyncio.IncompleteReadError, ConnectionError):
            arrivals.put_nowait(None)

    async def _answer(self, request: bytes, arrived: float) -> bytes:
        if self.gateway.bus_down:
            return bytes((2, STATUS_FRAMING_ERROR, 0, 0))  # daliserver's only error status
        reply, foreign = await self.gateway.transact(self.line, ForwardFrame(16, request[2:4]), arrived)
        out = bytes((2, STATUS_FOREIGN, FOREIGN_FRAME, 0)) * foreign
        if reply.kind is ReplyKind.VALUE:
            return out + bytes((2, STATUS_ANSWER, reply.value or 0, 0))
        if reply.kind is ReplyKind.FRAMING_ERROR:  # several gear answered: daliserver reports 255 too
            return out + bytes((2, STATUS_FRAMING_ERROR, 0, 0))
        return out + bytes((2, STATUS_NO_ANSWER, 0, 0))


def _write_unless_closed(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.is_closing():
        writer.write(data)


# --------------------------------------------------------------------------- WebSocket endpoint


class LunatoneEndpoint:
    def __init__(self, gateway: SimGateway, host: str, port: int, path: str, lines: int) -> None:
        self.gateway, self.host, self.port, self.path, self.gateway_lines = gateway, host, port, path, lines
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_event: dict[web.WebSocketResponse, asyncio.Task[None]] = {}
        """Per socket, the last event sent late (``latency``): the next one waits for it."""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(self.path, self._serve)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        assert addresses, "the gateway's WebSocket site is not listening"
        self.port = addresses[0][1]

    async def stop(self) -> None:
        await self.drop_sessions()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def drop_sessions(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()

    def drop_sessions_soon(self) -> None:
        task = asyncio.ensure_future(self.drop_sessions())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        if "offline" in self.gateway.faults:
            raise web.HTTPServiceUnavailable()
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ws.send_json(
                {
                    "type": "info",
                    "data": {
                        "name": self.gateway.controller.id,
                        "descriptor": {"lines": self.gateway_lines, "protocolVersion": "1.0"},
                        "device": {"gtin": 9010342013607},
                        "errors": {},
                    },
                }
            )
            async for message in ws:
                arrived = time.monotonic() + self.gateway.one_way_s()
                if message.type != WSMsgType.TEXT or "offline" in self.gateway.faults:
                    break
                try:
                    event = json.loads(message.data)
                except ValueError:
                    continue
                if event.get("type") == "daliFrame":
                    task = asyncio.create_task(self._frame(ws, event.get("data") or {}, arrived))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            self._sockets.discard(ws)
            self._last_event.pop(ws, None)
        return ws

    async def _frame(self, ws: web.WebSocketResponse, data: Mapping[str, Any], arrived: float) -> None:
        if (early := arrived - time.monotonic()) > 0:
            await asyncio.sleep(early)
        await turns().wait()
        wire_line = int(data.get("line", -1))
        line = wire_line + 1
        mode = data.get("mode") or {}
        try:
            bits = int(data["numberOfBits"])
            frame = ForwardFrame(bits, bytes(data["daliData"]))
        except (KeyError, TypeError, ValueError):
            await self._event(ws, {"type": "daliFrame", "data": {"line": wire_line, "result": 6}})
            return
        if line not in self.gateway.lines:
            await self._event(ws, {"type": "daliFrame", "data": {"line": wire_line, "result": 5}})
            return
        if self.gateway.bus_down:
            await self._event(ws, {"type": "daliFrame", "data": {"line": wire_line, "result": lunatone.RESULT_NO_BUS_POWER}})
            return
        reply = Reply(ReplyKind.NONE)
        for _ in range(2 if mode.get("sendTwice") else 1):
            reply, foreign = await self.gateway.transact(line, frame, arrived)
            for _ in range(foreign):
                await self._event(ws, {"type": "daliMonitor", "data": {"line": wire_line, "bits": 24,
                                                                 "data": [0xFE, 0xFE, FOREIGN_FRAME], "framingError": False}})
            await self._event(ws, {"type": "daliFrame", "data": {"line": wire_line, "result": lunatone.RESULT_SENT}})
        if mode.get("waitForAnswer"):
            if reply.kind is ReplyKind.VALUE:
                answer = {"result": lunatone.ANSWER_8BIT, "daliData": reply.value}
            elif reply.kind is ReplyKind.FRAMING_ERROR:
                answer = {"result": lunatone.ANSWER_FRAMING_ERROR, "daliData": None}
            else:
                answer = {"result": lunatone.ANSWER_NONE, "daliData": None}
            await self._event(ws, {"type": "daliAnswer", "data": {"line": wire_line, **answer}})


    async def _event(self, ws: web.WebSocketResponse, event: Mapping[str, Any]) -> None:
        """Send an event now, or (``latency``) half a round trip from now, without holding up the
        gateway's next frame."""
        one_way = self.gateway.one_way_s()
        if one_way <= 0:
            await _send(ws, event)
            return
        before = self._last_event.get(ws)
        task = asyncio.ensure_future(_send_later(ws, event, time.monotonic() + one_way, before))
        self._last_event[ws] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _send_later(
    ws: web.WebSocketResponse, event: Mapping[str, Any], due: float, before: asyncio.Task[None] | None
) -> None:
    """Send ``event`` at ``due``, after the event sent before it on this socket."""
    if before is not None and not before.done():
        await asyncio.wait([before])
    if (wait := due - time.monotonic()) > 0:
        await asyncio.sleep(wait)
    await _send(ws, event)


async def _send(ws: web.WebSocketResponse, event: Mapping[str, Any]) -> None:
    if not ws.closed:
        with contextlib.suppress(ConnectionError):
            await ws.send_str(json.dumps(event, separators=(",", ":")))


# --------------------------------------------------------------------------- the host


class DaliSimulatorHost:
    """Simulated gateways for DALI controllers (the plugin's ``create_simulator``)."""

    fault_kinds = FAULT_KINDS

    def __init__(
        self, controllers: Sequence[ControllerConfig], *, any_port: bool = False, timing: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.any_port = any_port
        self.host = host
        self.gateways = {c.id: SimGateway(c, timing=timing) for c in controllers}
        self._daliserver: dict[str, list[DaliserverEndpoint]] = {}
        self._lunatone: dict[str, LunatoneEndpoint] = {}

    def gateway(self, controller_id: str) -> SimGateway:
        return self.gateways[controller_id]

    async def start(self) -> None:
        try:
            for cid, gateway in self.gateways.items():
                settings = gateway.settings
                profile = load_profiles().get(gateway.controller.profile)
                bind = self.host if self.any_port else settings.host
                if settings.gateway == "daliserver":
                    endpoints = []
                    for line in settings.lines:
                        port = 0 if self.any_port else line_port(settings, profile, line)
                        endpoint = DaliserverEndpoint(gateway, line.line, bind, port)
                        endpoints.append(endpoint)
                        self._daliserver.setdefault(cid, []).append(endpoint)
                        await endpoint.start()
                else:
                    port = 0 if self.any_port else (settings.port or (profile.default_port if profile else 80))
                    lines = profile.lines if profile else max(gateway.lines)
                    ws_endpoint = LunatoneEndpoint(gateway, bind, port, settings.path, lines)
                    self._lunatone[cid] = ws_endpoint
                    await ws_endpoint.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for endpoints in self._daliserver.values():
            for endpoint in endpoints:
                await endpoint.stop()
        for ws_endpoint in self._lunatone.values():
            await ws_endpoint.stop()
        self._daliserver.clear()
        self._lunatone.clear()

    def endpoints(self) -> Mapping[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for cid, endpoints in self._daliserver.items():
            out[cid] = {"host": endpoints[0].host, "ports": {e.line: e.port for e in endpoints}}
        for cid, ws_endpoint in self._lunatone.items():
            out[cid] = {"host": ws_endpoint.host, "port": ws_endpoint.port}
        return out

    def inject(self, controller_id: str, fault: Fault) -> None:
        gateway = self.gateways[controller_id]
        gateway.inject(fault)
        if fault.kind == "offline":
            for endpoint in self._daliserver.get(controller_id, []):
                endpoint.drop_sessions()
            if controller_id in self._lunatone:
                self._lunatone[controller_id].drop_sessions_soon()

    def clear(self, controller_id: str, kind: str | None = None) -> None:
        self.gateways[controller_id].clear(kind)

    def request_count(self, controller_id: str) -> int:
        return self.gateways[controller_id].frames

    def write_times(self, controller_id: str) -> Sequence[float]:
        """Instants frames that change outputs went on the bus, on all lines of the gateway."""
        lines = self.gateways[controller_id].lines.values()
        return sorted(t for line in lines for t in line.write_times)


def gear_lines(controller: ControllerConfig) -> dict[int, frozenset[int]]:
    return {line.line: parse_addresses(line.gear) for line in dali_settings(controller).lines}


__all__ = ["FRAME_S", "QUERY_S", "DaliSimulatorHost", "SimGateway"]
