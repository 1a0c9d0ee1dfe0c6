"""The simulators' datagram queue: one hand-over per pass of the loop, in arrival order."""

from __future__ import annotations

import asyncio

from drivers.bacnet.simqueue import ArrivalQueue


async def test_the_loop_runs_between_two_hand_overs() -> None:
    loop = asyncio.get_running_loop()
    queue = ArrivalQueue()
    order: list[str] = []

    def deliver(name: str) -> None:
        order.append(name)
        loop.call_soon(order.append, f"after {name}")  # what the loop does next: read sockets, run tasks

    for name in ("a", "b", "c"):
        queue.put(lambda name=name: deliver(name))  # type: ignore[misc]
    for _ in range(10):
        await asyncio.sleep(0)
    assert order == ["a", "after a", "b", "after b", "c", "after c"]
    queue.put(lambda: deliver("d"))
    await queue.close()
    for _ in range(3):
        await asyncio.sleep(0)
    assert "d" not in order  # closed: what was queued is dropped, the pump is gone
