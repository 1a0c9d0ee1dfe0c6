"""Per-line arbitration: commands go first, the sweep fills the gaps.

A command batch holds the line for all its frames (so DTR0 and the command that uses it are never
split). The sweep takes the line one query at a time and only while no command is waiting, so a
switch waits at most for the one query already on the wire (47 ms).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from drivers.base import Turn, try_acquire


class LineArbiter:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._commands_waiting = 0
        self._no_commands = asyncio.Event()
        self._no_commands.set()
        self.command_turn: Turn = _CommandTurn(self)
        """``try_command``/``end_command`` as a :class:`drivers.base.Turn` (a show's beat)."""

    @asynccontextmanager
    async def command(self) -> AsyncIterator[None]:
        self._command_coming()
        try:
            await self._lock.acquire()
        except BaseException:
            self._command_gone()
            raise
        try:
            yield
        finally:
            self.end_command()

    def try_command(self) -> bool:
        """``command()``'s turn taken now, for a show's beat: True if the line was free and nobody
        waited for it; the caller then holds the turn and must ``end_command()``. False, holding
        and changing nothing, if not."""
        if not try_acquire(self._lock):
            return False
        self._command_coming()
        return True

    def end_command(self) -> None:
        """Give back a command turn (``try_command``'s, or ``command()``'s on leaving)."""
        self._lock.release()
        self._command_gone()

    @property
    def idle(self) -> bool:
        """Nobody holds the line or waits for a command turn on it."""
        return not self._lock.locked() and self._commands_waiting == 0

    def _command_coming(self) -> None:
        self._commands_waiting += 1
        self._no_commands.clear()

    def _command_gone(self) -> None:
        self._commands_waiting -= 1
        if self._commands_waiting == 0:
            self._no_commands.set()

    @asynccontextmanager
    async def query(self) -> AsyncIterator[None]:
        while True:
            await self._no_commands.wait()
            await self._lock.acquire()
            if self._commands_waiting == 0:
                break
            self._lock.release()
        try:
            yield
        finally:
            self._lock.release()


class _CommandTurn:
    __slots__ = ("arbiter",)

    def __init__(self, arbiter: LineArbiter) -> None:
        self.arbiter = arbiter

    def try_take(self) -> bool:
        return self.arbiter.try_command()

    def give_back(self) -> None:
        self.arbiter.end_command()
