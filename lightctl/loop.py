"""The event loop the daemon, the simulators and the benchmarks run on.

uvloop where it is installed (Linux, macOS): measured on this 2-core machine it takes a Modbus
request from 83-112 to 66-75 µs of client CPU and the simulator's side from 106-146 to 82-124 µs
(drivers/modbus/README.md), and on two cores every µs of either side is wall time. Plain asyncio
otherwise; the tests run on plain asyncio, so both are exercised.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def settle_heap() -> None:
    """Move everything built so far (config, inventory, drivers, simulated devices) out of the
    garbage collector's sight. Those objects live as long as the process, and every full
    collection walked them all: measured on a 1,000-controller one switch, freezing them after
    start-up took the engine from 320-344 to 215-249 ms of CPU per switch."""
    gc.collect()
    gc.freeze()


@contextmanager
def collections_held() -> Iterator[None]:
    """Keep the garbage collector from starting on its own (a show: a collection at a beat stops
    the loop for tens of ms while every controller waits for its cue); ``collect_due`` then runs
    what falls due at a moment the caller chooses. Automatic collection resumes on exit."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def collect_due() -> int:
    """Run the collection the automatic collector would have run by now (the same thresholds:
    young generation, and the older ones every so many of those); returns the generation, or -1."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if thresholds[generation] and counts[generation] >= thresholds[generation]:
            gc.collect(generation)
            return generation
    return -1


SHOW_SWITCH_INTERVAL_S = 0.0005
"""How long another thread may hold the interpreter while the loop wants it, during a show."""


@contextmanager
def short_switch_interval(interval_s: float = SHOW_SWITCH_INTERVAL_S) -> Iterator[None]:
    """Let the event loop's thread have the interpreter back sooner from the daemon's other
    thread (the store's writer, busy with the readings a show's changes bring). Python's default
    is 5 ms, and a beat's sends wait that long whenever the writer has it.

    Kept on measurement (issue 11): ``bench show --controllers 200`` (mixed), five interleaved
    pairs on 4 Dec 2026 22:24-22:29, the daemon's pass from first to last send p99 14.2, 16.0,
    17.0, 17.5, 18.6 ms with it against 12.8, 23.9, 26.1, 31.5, 46.9 ms at the default (spread
    p99 18.5-47.4 against 16.2-46.9 ms). ``sys.setswitchinterval`` is a public API."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(interval_s)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


async def sleep_until(deadline: float, spin_s: float) -> float:
    """Sleep until ``deadline`` (time.monotonic), and return how late it was reached.

    The loop's timers wake a sleeper only when the callbacks before it are done: whatever runs
    when the deadline falls due (replies being decoded, pushed readings) makes it late. So the
    sleep ends ``spin_s`` early and the rest is waited without yielding, during which nothing
    else runs: a show's beat, when every controller is waiting for its cue, is on time unless
    the loop was busy for longer than ``spin_s`` right before it."""
    ahead = deadline - spin_s - time.monotonic()
    if ahead > 0:
        await asyncio.sleep(ahead)
    while (now := time.monotonic()) < deadline:
        pass
    return now - deadline
