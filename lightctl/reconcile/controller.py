"""One controller as the engine holds it: its driver, link, desired and confirmed state, the lock
that lets commands before polls, and how a read-back is judged against what was commanded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.base import Driver, try_acquire
from lightctl.inventory.index import ControllerInfo
from lightctl.model.desired import Desired, Released
from lightctl.model.values import ChannelId, ChannelReading, ControllerReading
from lightctl.reconcile.reconnect import Backoff, Link


class CommandFirstLock:
    """Serialises access to one controller; polls give way to commands.

    ``async with lock:`` is a command's way in (written as a plain class: this sits on the one
    switch's hot path, once per controller); ``lock.try_poll()`` is a poll's, which declines
    rather than waits when a command holds or waits for the controller."""

    __slots__ = ("_commands_waiting", "_lock", "holder")

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._commands_waiting = 0
        self.holder = ""
        """What holds the controller (set by whoever takes it): named when a command that waited
        for it gives up, so that a busy controller never passes for a silent one."""

    async def __aenter__(self) -> None:
        self._commands_waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._commands_waiting -= 1

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()

    def try_acquire(self) -> bool:
        """A command's way in without waiting (a show's beat): False when anyone holds or waits."""
        return try_acquire(self._lock)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    @contextlib.asynccontextmanager
    async def try_poll(self) -> AsyncIterator[bool]:
        """Yields False (and holds nothing) when a command holds or waits for the controller."""
        if self._commands_waiting or self._lock.locked():
            yield False
            return
        async with self._lock:
            self.holder = "a poll"
            yield True


@dataclass(eq=False)
class Runtime:
    info: ControllerInfo
    driver: Driver[Any]
    link: Link
    desired: dict[ChannelId, Desired] = field(default_factory=dict)
    confirmed: dict[ChannelId, Desired] = field(default_factory=dict)
    reading: ControllerReading | None = None
    lock: CommandFirstLock = field(default_factory=CommandFirstLock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    converge_backoff: Backoff = field(default_factory=Backoff)
    converge_at: float = 0.0
    held: bool = False
    """While a show drives this controller, background convergence leaves it alone."""
    pushed: bool = False
    """The driver pushes readings (OPC UA data changes, BACnet COV, or its own poll): no polling here."""
    seen_at: float = 0.0
    """``time.monotonic()`` when the device last answered or pushed anything."""

    @property
    def id(self) -> str:
        return self.info.controller.id

    def pending(self) -> dict[ChannelId, Desired]:
        return {ch: st for ch, st in self.desired.items() if self.confirmed.get(ch) != st}

    def handed_back(self) -> list[ChannelId]:
        """Channels handed back to their owner, confirmed by read-back."""
        return [ch for ch, st in self.confirmed.items() if isinstance(st, Released) and self.desired.get(ch) == st]


def matches(reading: ChannelReading | None, state: Desired, tolerance: float) -> bool:
    """Does a read-back show the commanded state (or, for RELEASED, our command withdrawn)?"""
    if isinstance(state, Released):
        return reading is not None and reading.released is True
    if reading is None or (reading.on is None and reading.level is None):
        return False
    if reading.on is not None and reading.on != state.on:
        return False
    return not (state.on and reading.level is not None and abs(reading.level - state.level) > tolerance)


def refusal(rejected: Mapping[ChannelId, str]) -> str:
    return "device refused " + "; ".join(f"{ch}: {why}" for ch, why in sorted(rejected.items()))


def describe_mismatch(
    batch: Mapping[ChannelId, Desired], reading: ControllerReading, tolerance: float
) -> str:
    parts = []
    for ch, st in batch.items():
        got = reading.channels.get(ch)
        if matches(got, st, tolerance):
            continue
        if got is None:
            parts.append(f"{ch}: not in the reading")
            continue
        if isinstance(st, Released):
            parts.append(f"{ch}: handed back, but the reading shows the centre's command still in place"
                         if got.released is False else f"{ch}: handed back, the reading does not show it")
            if len(parts) == 4:
                break
            continue
        seen = "on" if got.on else "off" if got.on is not None else "?"
        if got.level is not None:
            seen += f" {got.level:g}%"
        faults = f" [{', '.join(sorted(got.faults))}]" if got.faults else ""
        want = f"on {st.level:g}%" if st.on else "off"
        parts.append(f"{ch}: want {want}, read {seen}{faults}")
        if len(parts) == 4:
            break
    return "read-back differs: " + "; ".join(parts)


class LockTaken:
    """Whether a send got its controller before its deadline (see ``Engine._sent``)."""

    __slots__ = ("taken",)

    def __init__(self) -> None:
        self.taken = False


def busy(rt: Runtime, deadline_s: float) -> str:
    return f"not sent: the controller stayed busy with {rt.lock.holder or 'another operation'} for {deadline_s:g} s"
