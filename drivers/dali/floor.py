"""The benchmark's floor for one DALI gateway: the driver's frames for a batch and its read-back,
encoded before timing starts and sent over plain asyncio sockets (no driver logic in the loop).

The batch is compiled as the driver compiles it in steady state (fade times already known), and
the read-back is one QueryActualLevel per channel, as the driver's confirmation does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping

import aiohttp

from drivers.dali import frames
from drivers.dali.compile import LineKnowledge, compile_line, target_of
from drivers.dali.daliserver import STATUS_FOREIGN
from drivers.dali.daliserver import encode_request as encode_daliserver
from drivers.dali.frames import Transaction
from drivers.dali.lunatone import encode_request as encode_ws
from drivers.dali.model import dali_settings, line_port, load_profiles, topology
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelId, ChannelState

FLOOR_TIMEOUT_S = 10.0


def batch_transactions(controller: ControllerConfig, states: Mapping[ChannelId, ChannelState]) -> dict[int, list[Transaction]]:
    out: dict[int, list[Transaction]] = {}
    for number, topo in topology(controller).items():
        know = LineKnowledge()
        for channel_id, members in topo.members.items():
            if channel_id in states:
                target = target_of(states[channel_id], bool(set(members) & topo.colour_gear))
                for addr in members:
                    know.fade[addr] = target.fade
                    if target.mirek is not None:
                        know.mirek[addr] = target.mirek
        txs = [t for op in compile_line(topo, states, know) for t in op.transactions]
        txs += [frames.query_level(topo.members[ch][0]) for ch in topo.channels if ch in states and topo.members[ch]]
        if txs:
            out[number] = txs
    return out


class DaliFloorClient:
    def __init__(self, controller: ControllerConfig, states: Mapping[ChannelId, ChannelState]) -> None:
        self.controller = controller
        self.settings = dali_settings(controller)
        self.batches = batch_transactions(controller, states)
        self._streams: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._queues: dict[int, asyncio.Queue[str]] = {}
        self._reader: asyncio.Task[None] | None = None
        if self.settings.gateway == "daliserver":
            self._requests = {
                n: [encode_daliserver(t) * (2 if t.send_twice else 1) for t in txs] for n, txs in self.batches.items()
            }
        else:
            self._messages = {n: [(encode_ws(n, t), t) for t in txs] for n, txs in self.batches.items()}

    async def connect(self) -> None:
        profile = load_profiles().get(self.controller.profile)
        async with asyncio.timeout(FLOOR_TIMEOUT_S):
            if self.settings.gateway == "daliserver":
                for line in self.settings.lines:
                    if line.line in self.batches:
                        port = line_port(self.settings, profile, line)
                        self._streams[line.line] = await asyncio.open_connection(self.settings.host, port)
                return
            port = self.settings.port or (profile.default_port if profile else 80)
            self._session = aiohttp.ClientSession()
            self._ws = await self._session.ws_connect(f"ws://{self.settings.host}:{port}{self.settings.path}")
            await self._ws.receive()  # the "info" greeting
            self._queues = {n: asyncio.Queue() for n in self.batches}
            self._reader = asyncio.create_task(self._read(self._ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            event = json.loads(message.data)
            if event["type"] in ("daliFrame", "daliAnswer"):
                self._queues[event["data"]["line"] + 1].put_nowait(event["type"])

    async def run(self) -> int:
        async with asyncio.timeout(FLOOR_TIMEOUT_S):
            if self.settings.gateway == "daliserver":
                counts = await asyncio.gather(*(self._run_tcp(n) for n in self._requests))
            else:
                counts = await asyncio.gather(*(self._run_ws(n) for n in self._messages))
        return sum(counts)

    async def _run_tcp(self, number: int) -> int:
        reader, writer = self._streams[number]
        frames_sent = 0
        for request in self._requests[number]:
            for offset in range(0, len(request), 4):
                writer.write(request[offset : offset + 4])
                while (await reader.readexactly(4))[1] == STATUS_FOREIGN:
                    pass
                frames_sent += 1
        return frames_sent

    async def _run_ws(self, number: int) -> int:
        assert self._ws is not None
        queue = self._queues[number]
        frames_sent = 0
        for message, transaction in self._messages[number]:
            await self._ws.send_str(message)
            for _ in range(2 if transaction.send_twice else 1):
                await queue.get()
                frames_sent += 1
            if transaction.expects_reply:
                await queue.get()
        return frames_sent

    async def close(self) -> None:
        for _, writer in self._streams.values():
            writer.close()
        self._streams.clear()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._session is not None:
            await self._session.close()
