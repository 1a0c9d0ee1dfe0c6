"""The simulated devices of one process take their datagrams one per pass of the event loop.

bacpypes3 starts a task per datagram, and a task runs its whole request (decode, service, reply:
about 1.5 ms) before the loop looks at the sockets again. With dozens of simulated buildings in
one process, a datagram that reaches the last of them waits behind its neighbours' work before it
is even read, and its arrival would be noted that much late: a real building has its own CPU.
Here each device's socket callback notes the arrival and queues the datagram; the queue hands
bacpypes3 one datagram per pass, so between two requests' work the loop reads (and stamps)
whatever has arrived. The work done is the same, in the same order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable


class ArrivalQueue:
    def __init__(self) -> None:
        self._pending: deque[Callable[[], None]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def put(self, deliver: Callable[[], None]) -> None:
        """Queue one datagram's hand-over to bacpypes3 (which starts its task)."""
        self._pending.append(deliver)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                self._pending.popleft()()
                await asyncio.sleep(0)  # that request's task runs in the next pass; sockets are read first

    async def close(self) -> None:
        task, self._task = self._task, None
        self._pending.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
