"""Per-line arbitration: commands go first, the sweep fills the gaps.

A command batch holds the line for all its frames (so DTR0 and the command that uses it are never
split). The sweep takes the line one query at a time and only while no command is waiting, so a
switch waits at most for the one query already on the wire (47 ms).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class LineArbiter:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._commands_waiting = 0
        self._no_commands = asyncio.Event()
        self._no_commands.set()

    @asynccontextmanager
    async def command(self) -> AsyncIterator[None]:
        self._commands_waiting += 1
        self._no_commands.clear()
        try:
            async with self._lock:
                yield
        finally:
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
