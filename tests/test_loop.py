"""The loop helpers a show uses: garbage collection held and run when due, short GIL switches,
a beat waited for on time."""

from __future__ import annotations

import asyncio
import gc
import sys
import time

from lightctl.loop import collect_due, collections_held, short_switch_interval, sleep_until


def test_collections_are_held_and_run_when_due() -> None:
    assert gc.isenabled()
    with collections_held():
        assert not gc.isenabled()
        gc.collect()
        assert collect_due() == -1  # nothing due right after a collection
        garbage = [[i] for i in range(gc.get_threshold()[0] * 2)]  # allocations past the young threshold
        assert gc.get_count()[0] >= gc.get_threshold()[0]
        assert collect_due() == 0
        assert gc.get_count()[0] < gc.get_threshold()[0]
        del garbage
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with collections_held():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_short_switch_interval_is_restored() -> None:
    before = sys.getswitchinterval()
    with short_switch_interval(0.0005):
        assert abs(sys.getswitchinterval() - 0.0005) < 1e-9
    assert sys.getswitchinterval() == before


async def test_sleep_until_waits_the_last_moments_without_yielding() -> None:
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + 0.3
    ran_at: list[float] = []
    loop.call_at(loop.time() + 0.25, lambda: ran_at.append(time.monotonic()))  # falls due 50 ms before the deadline
    late = await sleep_until(deadline, spin_s=0.15)
    assert 0.0 <= late < 0.05
    assert not ran_at  # it would have made a plain sleep late; here it waits for the deadline
    await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    assert ran_at and ran_at[0] >= deadline
