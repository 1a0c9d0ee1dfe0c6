"""The DALI driver: channels on gateway lines, compiled to the fewest frames, read back by query."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection, Iterable, Mapping, Sequence

from drivers.base import ControllerTimeout, Driver, DriverError, PreparedSend, settings_of
from drivers.dali import frames
from drivers.dali.arbiter import LineArbiter
from drivers.dali.compile import LineKnowledge, LineOp, compile_line
from drivers.dali.daliserver import DaliserverTransport
from drivers.dali.frames import Reply, ReplyKind, Transaction
from drivers.dali.levels import LEVEL_TOLERANCE, MASK, arc_to_percent, mirek_to_kelvin
from drivers.dali.lines import LineSender
from drivers.dali.lunatone import LunatoneTransport
from drivers.dali.model import DaliSettings, LineTopology, dali_settings, line_port, load_profiles, topology
from drivers.dali.prepared import PreparedLines
from drivers.dali.transport import FrameTransport, HeldLineTransport
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import (
    ApplyResult,
    ChannelId,
    ChannelReading,
    ChannelState,
    Colour,
    ControllerReading,
    FaultKind,
    PlannedOperation,
)


def make_transport(controller: ControllerConfig) -> FrameTransport:
    settings = dali_settings(controller)
    profile = load_profiles().get(controller.profile)
    if settings.gateway == "daliserver":
        ports = {line.line: line_port(settings, profile, line) for line in settings.lines}
        return DaliserverTransport(controller.id, controller.timeout_s, settings.host, ports)
    port = settings.port or (profile.default_port if profile else 80)
    url = f"ws://{settings.host}:{port}{settings.path}"
    return LunatoneTransport(controller.id, controller.timeout_s, url, [line.line for line in settings.lines])


COMPILED_KEPT = 64
"""Compiled batches remembered (a show's cues, the day's scenes), each for the knowledge it was
compiled with."""
FIRST_SWEEP_WAIT = 1.5
"""How long, in multiples of the controller's timeout, the first full poll waits for the first pass."""
MIN_SWEEP_PAUSE_S = 0.2
"""Pause between passes even when a pass takes longer than ``poll_s``: the bus is not only ours."""


class DaliDriver(Driver[DaliSettings]):
    level_tolerance = LEVEL_TOLERANCE

    def __init__(self, controller: ControllerConfig) -> None:
        super().__init__(controller, settings_of(controller, DaliSettings))
        self.lines: dict[int, LineTopology] = topology(controller)
        self.transport = make_transport(controller)
        self.arbiters = {n: LineArbiter() for n in self.lines}
        self.knowledge = {n: LineKnowledge() for n in self.lines}
        self.sender = LineSender(self.transport, self.arbiters, self.knowledge)
        self._line_of = {ch: n for n, topo in self.lines.items() for ch in topo.channels}
        self._sweeper: asyncio.Task[None] | None = None
        self._last_sweep: ControllerReading | None = None
        self._sweep_error: DriverError | None = None
        self._swept = asyncio.Event()
        self._pass_started = 0.0
        self._compiled: dict[tuple[object, ...], tuple[dict[int, list[LineOp]], dict[ChannelId, str]]] = {}
        self._confirmed: dict[ChannelId, tuple[float, ChannelReading]] = {}
        """Read-backs by channel with their time: fresher than a sweep pass that began before them."""

    async def connect(self) -> None:
        if self.transport.is_open():
            return  # a warm start on a live session: what the driver knows of the gear still holds
        for know in self.knowledge.values():
            know.forget()  # another master may have changed the gear while we were away
        await self.transport.connect()

    async def close(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(BaseException):
                await sweeper
        self._last_sweep, self._sweep_error = None, None
        self._swept.clear()
        await self.transport.close()

    # ------------------------------------------------------------------ commands

    def _compile(self, states: Mapping[ChannelId, ChannelState]) -> tuple[dict[int, list[LineOp]], dict[ChannelId, str]]:
        """``_compile_now``, remembered per batch and knowledge of the gear: a show's cues are
        compiled by ``plan`` before the first beat, and at the beat ``apply`` only sends. The
        result is shared: callers copy before changing it."""
        key = (tuple(states.items()), *(know.version for know in self.knowledge.values()))
        found = self._compiled.get(key)
        if found is None:
            found = self._compile_now(states)
            if len(self._compiled) >= COMPILED_KEPT:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[key] = found
        return found

    def _compile_now(self, states: Mapping[ChannelId, ChannelState]) -> tuple[dict[int, list[LineOp]], dict[ChannelId, str]]:
        rejected: dict[ChannelId, str] = {}
        by_line: dict[int, dict[ChannelId, ChannelState]] = {}
        for channel_id, state in states.items():
            line = self._line_of.get(channel_id)
            if line is None:
                rejected[channel_id] = "no such channel on this controller"
                continue
            if state.colour is not None and state.colour.rgb is not None:
                rejected[channel_id] = "RGB colour is not supported over DALI (DT8 Tc only)"
                continue
            by_line.setdefault(line, {})[channel_id] = state
        plans = {n: compile_line(self.lines[n], batch, self.knowledge[n]) for n, batch in by_line.items()}
        return plans, rejected

    def plan(self, states: Mapping[ChannelId, ChannelState]) -> Sequence[PlannedOperation]:
        plans, _ = self._compile(states)
        out = []
        for ops in plans.values():
            for op in ops:
                detail = " + ".join(str(t) for t in op.transactions)
                out.append(PlannedOperation(op.kind, f"line {op.point}", op.channels, f"{op.frames} frame(s): {detail}"))
        return out

    async def apply(self, states: Mapping[ChannelId, ChannelState]) -> ApplyResult:
        plans, refused = self._compile(states)
        return await self.sender.apply(plans, refused)

    def prepare(self, states: Mapping[ChannelId, ChannelState]) -> PreparedSend | None:
        """Compiled, and each line's first frame encoded, for ``fire`` to write. None without a
        session or with nothing to send: the caller then awaits ``apply``."""
        transport = self.transport
        if not isinstance(transport, HeldLineTransport) or not transport.is_open():
            return None
        versions = self.sender.versions()
        plans, refused = self._compile(states)
        if not plans:
            return None
        try:
            firsts = {n: transport.encode(n, ops[0].transactions[0]) for n, ops in plans.items()}
        except DriverError:
            return None  # apply raises it
        return PreparedLines(self.sender, transport, versions, plans, refused, firsts)

    async def transact(self, line: int, transaction: Transaction) -> Reply:
        """One transaction with command priority (commissioning tools use this)."""
        async with self.arbiters[line].command():
            return await self.transport.send(line, transaction)

    # ------------------------------------------------------------------ observation

    async def read(self, channels: Collection[ChannelId] | None = None) -> ControllerReading:
        if channels is not None:
            wanted: dict[int, list[ChannelId]] = {}
            for channel_id in channels:
                if channel_id in self._line_of:
                    wanted.setdefault(self._line_of[channel_id], []).append(channel_id)
            parts = await asyncio.gather(*(self._confirm(n, chs) for n, chs in wanted.items()))
            readings = {ch: r for part in parts for ch, r in part.items()}
            return ControllerReading(time.time(), readings)
        return await self._latest_sweep()

    async def _latest_sweep(self) -> ControllerReading:
        """A full poll is the last pass of the driver's own background sweep, so that the caller's
        poll never holds the controller (and a command) for the seconds a 1,200-baud sweep takes.
        The first call starts the sweep and waits for its first pass; a pass that failed raises."""
        if self._sweeper is None or self._sweeper.done():
            self._swept.clear()
            self._sweeper = asyncio.create_task(self._sweep_loop(), name=f"dali-sweep:{self.controller_id}")
        if not self._swept.is_set():
            try:
                async with asyncio.timeout(FIRST_SWEEP_WAIT * self.controller.timeout_s):
                    await self._swept.wait()
            except TimeoutError:
                raise ControllerTimeout(self.controller_id, "the first query sweep has not finished yet") from None
        if self._sweep_error is not None:
            error = self._sweep_error
            raise type(error)(error.controller_id, error.detail)
        assert self._last_sweep is not None
        return self._with_fresher_readbacks(self._last_sweep)

    def _with_fresher_readbacks(self, swept: ControllerReading) -> ControllerReading:
        """A pass that began before a command reports the old levels of what the command changed:
        those channels take on and level from the command's read-back (faults stay the pass's)."""
        newer = {ch: r for ch, (at, r) in self._confirmed.items() if at > self._pass_started}
        if not newer:
            return swept
        channels = dict(swept.channels)
        for channel_id, reading in newer.items():
            old = channels.get(channel_id)
            faults = old.faults if old is not None else frozenset()
            colour = old.colour if old is not None else None
            channels[channel_id] = ChannelReading(on=reading.on, level=reading.level, colour=colour, faults=faults)
        return ControllerReading(swept.at, channels, swept.power_w, swept.energy_kwh, swept.faults, swept.measurements)

    async def _sweep_loop(self) -> None:
        """One pass every ``poll_s`` (at sweep priority: commands on a line go first)."""
        while True:
            started = time.monotonic()
            try:
                # the first pass only asks each channel (it is what the first poll waits for)
                reading = await self.sweep_once(gear_by_gear=self._last_sweep is not None)
                self._last_sweep, self._pass_started, self._sweep_error = reading, started, None
            except DriverError as exc:
                self._sweep_error = exc
            self._swept.set()
            await asyncio.sleep(max(MIN_SWEEP_PAUSE_S, self.controller.poll_s - (time.monotonic() - started)))

    async def sweep_once(self, *, gear_by_gear: bool = True) -> ControllerReading:
        """One bounded pass over every line now (see _sweep); the background sweep calls this."""
        sweeps = await asyncio.gather(*(self._sweep(n, gear_by_gear) for n in self.lines))
        readings, measurements = {}, {}
        for found, figures in sweeps:
            readings.update(found)
            measurements.update(figures)
        faults = frozenset(f for r in readings.values() for f in r.faults)
        return ControllerReading(time.time(), readings, faults=faults, measurements=measurements)

    async def _confirm(self, number: int, channel_ids: list[ChannelId]) -> dict[ChannelId, ChannelReading]:
        """Read-back after a command: QueryActualLevel of one gear per channel (a group query would
        collide), with command priority: it is part of the switch."""
        topo = self.lines[number]
        out = {}
        async with self.arbiters[number].command():
            for channel_id in channel_ids:
                reading = ChannelReading(faults=frozenset({FaultKind.GEAR_FAILURE}))
                for addr in topo.members[channel_id][:3]:  # a missing gear: try the next member
                    reply = await self.transport.send(number, frames.query_level_cached(addr))
                    if reply.kind is ReplyKind.VALUE and reply.value != MASK:
                        level = arc_to_percent(reply.value or 0)
                        reading = ChannelReading(on=level > 0, level=level)
                        break
                out[channel_id] = reading
                self._confirmed[channel_id] = (time.monotonic(), reading)
        return out

    async def _query(self, number: int, transaction: Transaction) -> Reply:
        async with self.arbiters[number].query():
            reply = await self.transport.send(number, transaction)
        if self.settings.sweep_gap_s:
            await asyncio.sleep(self.settings.sweep_gap_s)
        return reply

    async def _sweep(self, number: int, gear_by_gear: bool = True) -> tuple[dict[ChannelId, ChannelReading], dict[str, float]]:
        """One poll of a line at sweep priority, bounded so that it fits a poll's time: per channel,
        the level of one member and lamp and gear failure asked of the whole channel at once (a
        yes/no query: silence means no, any answer or a collision means at least one); then, within
        ``sweep_budget`` queries, the gear one by one (levels, missing gear, which gear failed,
        stored scenes), resuming where the last poll stopped. A 64-gear line is covered in a few
        polls instead of holding the bus for seconds."""
        topo = self.lines[number]
        know = self.knowledge[number]
        budget = self.settings.sweep_budget if gear_by_gear else 0
        readings: dict[ChannelId, ChannelReading] = {}
        figures: dict[str, float] = {}
        failing: list[tuple[int, bool]] = []  # (gear, is_lamp) to narrow down
        heads: dict[ChannelId, int | None] = {}
        said_yes: set[tuple[ChannelId, bool]] = set()
        for channel_id, point in topo.channels.items():
            members = topo.members[channel_id]
            if not members:
                continue
            address = frames.gear_address(point)
            heads[channel_id] = await self._level_of(number, members)
            for query, store, is_lamp in (
                (frames.query_lamp_failure, know.lamp_failed, True),
                (frames.query_gear_failure, know.gear_failed, False),
            ):
                if (await self._query(number, query(address))).yes:
                    said_yes.add((channel_id, is_lamp))
                    if len(members) == 1:
                        store[members[0]] = True
                    else:
                        failing += [(a, is_lamp) for a in members if not store.get(a)]
                else:
                    for addr in members:
                        store[addr] = False
        for addr, is_lamp in failing:
            if budget <= 0:
                break
            query = frames.query_lamp_failure if is_lamp else frames.query_gear_failure
            store = know.lamp_failed if is_lamp else know.gear_failed
            store[addr] = (await self._query(number, query(frames.short(addr)))).yes
            budget -= 1
        if self.settings.scenes:
            left = await self._sweep_levels(number, budget // 2)
            await self._sweep_scenes(number, budget - budget // 2 + left)
        else:
            await self._sweep_levels(number, budget)
        for channel_id, members in topo.members.items():
            if channel_id not in heads:
                continue
            faults: set[FaultKind] = set()
            lamp = sum(1 for a in members if know.lamp_failed.get(a))
            gear = sum(1 for a in members if know.gear_failed.get(a))
            missing = sum(1 for a in members if a in know.gear_levels and know.gear_levels[a] is None)
            if lamp or (channel_id, True) in said_yes:
                faults.add(FaultKind.LAMP_FAILURE)
                figures[f"{channel_id}.lamp_failures"] = lamp
            if gear or missing or (channel_id, False) in said_yes:
                faults.add(FaultKind.GEAR_FAILURE)
                figures[f"{channel_id}.gear_failures"] = gear
                figures[f"{channel_id}.gear_missing"] = missing
            head = heads[channel_id]
            if head is None:
                readings[channel_id] = ChannelReading(faults=frozenset(faults | {FaultKind.GEAR_FAILURE}))
                continue
            colour = await self._colour(number, members[0]) if set(members) & topo.colour_gear else None
            level = arc_to_percent(head)
            readings[channel_id] = ChannelReading(on=level > 0, level=level, colour=colour, faults=frozenset(faults))
        return readings, figures

    async def _level_of(self, number: int, members: tuple[int, ...]) -> int | None:
        """The level of a channel: its first member that answers (a missing gear is skipped)."""
        know = self.knowledge[number]
        for addr in members[:3]:
            reply = await self._query(number, frames.query_level(addr))
            value = reply.value if reply.kind is ReplyKind.VALUE and reply.value != MASK else None
            know.gear_levels[addr] = value
            if value is not None:
                return value
        return None

    async def _sweep_levels(self, number: int, budget: int) -> int:
        gear = self.lines[number].gear
        know = self.knowledge[number]
        for _ in range(min(budget, len(gear))):
            addr = gear[know.level_cursor % len(gear)]
            know.level_cursor = (know.level_cursor + 1) % len(gear)
            reply = await self._query(number, frames.query_level(addr))
            know.gear_levels[addr] = reply.value if reply.kind is ReplyKind.VALUE and reply.value != MASK else None
            budget -= 1
        return budget

    async def _sweep_scenes(self, number: int, budget: int) -> None:
        """Scene tables as stored in the gear, a few entries per poll; GoToScene is used on a line
        only once every gear's entry is known (compile._scene_plan)."""
        gear = self.lines[number].gear
        know = self.knowledge[number]
        scenes = sorted(self.settings.scenes)
        cells = len(gear) * len(scenes)
        for _ in range(min(budget, cells)):
            scene, addr = scenes[know.scene_cursor // len(gear)], gear[know.scene_cursor % len(gear)]
            know.scene_cursor = (know.scene_cursor + 1) % cells
            reply = await self._query(number, frames.query_scene_level(addr, scene))
            know.set_scene_level(scene, addr, reply.value if reply.kind is ReplyKind.VALUE else None)

    async def _colour(self, number: int, addr: int) -> Colour | None:
        async with self.arbiters[number].query():
            replies = [await self.transport.send(number, t) for t in frames.query_colour_temperature(addr)]
        msb, lsb = replies[2], replies[3]
        if msb.kind is ReplyKind.VALUE and lsb.kind is ReplyKind.VALUE and msb.value != MASK:
            return Colour(cct_k=mirek_to_kelvin(((msb.value or 0) << 8) | (lsb.value or 0)))
        return None

    async def read_scenes(self, number: int, scenes: Iterable[int] | None = None) -> None:
        """Scene tables as stored in the gear, so that GoToScene is used only where it is true."""
        know = self.knowledge[number]
        tables: dict[int, dict[int, int]] = {}
        for scene in sorted(self.settings.scenes if scenes is None else scenes):
            table: dict[int, int] = {}
            for addr in self.lines[number].gear:
                reply = await self._query(number, frames.query_scene_level(addr, scene))
                if reply.kind is ReplyKind.VALUE and reply.value is not None:
                    table[addr] = reply.value
            tables[scene] = table
        know.scenes = tables
        know.scenes_read_at = time.monotonic()
        know.changed()

    def foreign_frames(self) -> int:
        return sum(self.transport.foreign_frames.values())

