"""Many simulated PLCs in one process: what keeps them from standing in each other's way.

* :class:`Turns`: messages are processed one per pass of the event loop, so that the loop reads
  every PLC's socket (and stamps arrivals) between them.
* :func:`install_cheap_value_copies`: asyncua's server deep-copies every value it hands a
  monitored item (a quarter of a simulated PLC's CPU per Write); scalar values are copied shallowly.
"""

from __future__ import annotations

import asyncio
import copy
import weakref
from collections import deque
from typing import Any

from asyncua import ua
from asyncua.server import monitored_item_service


class Turns:
    """Many simulated PLCs share one event loop: messages that arrive together would all be
    processed in one pass of the loop (a few ms each), and the loop would read no socket until the
    pass ends, so a PLC's arrival would be stamped late by its neighbours' work. Messages are
    therefore processed one per pass of the loop, in arrival order, and the loop reads its sockets
    between them. Only the start of processing waits its turn (a message alone goes at once);
    the rest runs as before."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.granted = False
        """A turn was given in this pass of the loop."""

    async def wait(self) -> None:
        if not self.granted and not self.waiting:
            self._grant()
            return
        turn: asyncio.Future[None] = self.loop.create_future()
        self.waiting.append(turn)
        await turn

    def _grant(self) -> None:
        self.granted = True
        self.loop.call_soon(self._pass_over)  # runs in the next pass, after the loop read its sockets

    def _pass_over(self) -> None:
        self.granted = False
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                self._grant()
                return


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Turns] = weakref.WeakKeyDictionary()


def turns() -> Turns:
    loop = asyncio.get_running_loop()
    turns = _TURNS.get(loop)
    if turns is None:
        turns = _TURNS[loop] = Turns(loop)
    return turns


_IMMUTABLE_SCALARS = (bool, int, float, str, bytes, type(None))


def copy_datavalue(value: ua.DataValue) -> ua.DataValue:
    """A copy the original's later changes cannot reach: for a scalar of an immutable type the two
    dataclasses are copied, anything else is deep-copied (what asyncua does for every value)."""
    variant = value.Value
    if variant is None or variant.is_array or not isinstance(variant.Value, _IMMUTABLE_SCALARS):
        return copy.deepcopy(value)
    out = copy.copy(value)
    out.Value = copy.copy(variant)
    return out


def _set_current_datavalue(self: Any, cur_val: ua.DataValue) -> None:
    self.old_dvalue = self.current_dvalue
    self.current_dvalue = copy_datavalue(cur_val)


def install_cheap_value_copies() -> None:
    """Replace ``MonitoredItemValues.set_current_datavalue`` (asyncua 2.1: keep the previous
    value, store a deep copy of the new one) by the same with :func:`copy_datavalue`. Only the
    simulators run an asyncua server in this project."""
    values: Any = monitored_item_service.MonitoredItemValues
    if getattr(values, "set_current_datavalue", None) is not _set_current_datavalue:
        values.set_current_datavalue = _set_current_datavalue
