"""Many simulated devices in one process take turns: one message's work per pass of the event loop.

A simulator process hosts dozens or hundreds of devices on one event loop. Messages that arrive
together would all be worked on in one pass of the loop (a simulated OPC UA PLC's Write or a BACnet
building's request costs a millisecond or more), and the loop would read no socket until the pass
ended: a device's arrival would be stamped late by its neighbours' work, where a real device has
its own CPU. So every simulator notes a message's arrival when its bytes are read, and starts
working on it in its turn: the first at once, the others one per pass of the loop, in arrival
order, across every protocol in the process; between two turns the loop reads its sockets.
Only the start of the work waits its turn; the work done is the same, in the same order.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable


class Turns:
    """The turns of one event loop's simulated devices (it keeps no reference to the loop, so
    that the loop's entry in ``_TURNS`` goes with it)."""

    def __init__(self) -> None:
        self.waiting: deque[Callable[[], bool]] = deque()
        """What waits for its turn: each returns False if it no longer wants it (a cancelled wait)."""
        self.granted = False
        """A turn was given in this pass of the loop."""

    def call(self, work: Callable[[], object]) -> None:
        """Do ``work`` (a plain function that starts working on one message) in its turn."""
        if not self.granted and not self.waiting:
            self._grant()
            work()
            return

        def take() -> bool:
            asyncio.get_running_loop().call_soon(work)  # in the next pass, as a woken wait's work is
            return True

        self.waiting.append(take)

    async def wait(self) -> None:
        """Wait for a turn (for a coroutine that works on one message)."""
        if not self.granted and not self.waiting:
            self._grant()
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def take() -> bool:
            if turn.done():
                return False
            turn.set_result(None)
            return True

        self.waiting.append(take)
        await turn

    def _grant(self) -> None:
        self.granted = True
        asyncio.get_running_loop().call_soon(self._pass_over)  # in the next pass, after the loop read its sockets

    def _pass_over(self) -> None:
        self.granted = False
        while self.waiting:
            if self.waiting.popleft()():
                self._grant()
                return


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Turns] = weakref.WeakKeyDictionary()


def turns() -> Turns:
    """The turns of the running loop's simulated devices."""
    loop = asyncio.get_running_loop()
    found = _TURNS.get(loop)
    if found is None:
        found = _TURNS[loop] = Turns()
    return found
