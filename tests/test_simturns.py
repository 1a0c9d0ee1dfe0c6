"""The simulated devices of one process take turns: one message's work per pass of the loop."""

from __future__ import annotations

import asyncio
import itertools

from drivers.modbus.sim import WRITE_FUNCTION_CODES, WriteArrivals
from drivers.simturns import turns


class PassCounter:
    """Counts the passes of the event loop while it runs."""

    def __init__(self) -> None:
        self.passes = 0

    async def run(self) -> None:
        while True:
            self.passes += 1
            await asyncio.sleep(0)


async def test_waits_and_calls_are_served_one_per_pass_in_arrival_order() -> None:
    shared = turns()
    counter = PassCounter()
    task = asyncio.create_task(counter.run())
    await asyncio.sleep(0.01)  # whatever went before has had its turns
    order: list[tuple[str, int]] = []

    async def message(name: str) -> None:
        await shared.wait()
        order.append((name, counter.passes))

    try:
        waiting = [asyncio.create_task(message(f"w{n}")) for n in range(3)]
        await asyncio.sleep(0)  # the first wait takes the free turn at once, the others queue
        for n in range(3):
            shared.call(lambda n=n: order.append((f"c{n}", counter.passes)))  # type: ignore[misc]
        await asyncio.gather(*waiting)
        for _ in range(10):
            await asyncio.sleep(0)
        assert [name for name, _ in order] == ["w0", "w1", "w2", "c0", "c1", "c2"]
        seen = [p for _, p in order]
        assert all(b > a for a, b in itertools.pairwise(seen)), seen  # one per pass

        await asyncio.sleep(0.01)
        before = counter.passes
        await shared.wait()  # alone: no wait
        assert counter.passes == before
        await asyncio.sleep(0.01)
        ran: list[str] = []
        shared.call(lambda: ran.append("now"))  # alone: at once
        assert ran == ["now"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_cancelled_wait_gives_its_turn_to_the_next() -> None:
    shared = turns()
    await asyncio.sleep(0.01)
    order: list[str] = []

    async def message(name: str) -> None:
        await shared.wait()
        order.append(name)

    first, second, third = (asyncio.create_task(message(name)) for name in "abc")
    await asyncio.sleep(0)  # a has the turn; b and c wait for theirs
    second.cancel()
    await asyncio.gather(first, second, third, return_exceptions=True)
    assert order == ["a", "c"]


class Cabinet:
    def __init__(self) -> None:
        self.write_times: list[float] = []


def mbap(tid: int, unit: int, pdu: bytes) -> bytes:
    return tid.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes([unit]) + pdu


def test_modbus_write_arrivals_are_found_in_the_byte_stream_however_it_is_cut() -> None:
    write = mbap(1, 1, bytes([16, 0, 0, 0, 1, 2, 0, 100]))  # FC16, one register
    read = mbap(2, 1, bytes([4, 0, 0, 0, 51]))  # FC04
    other_unit = mbap(3, 2, bytes([15, 0, 0, 0, 8, 1, 0xFF]))  # FC15 to unit 2
    stream = write + read + other_unit + write
    assert 16 in WRITE_FUNCTION_CODES and 4 not in WRITE_FUNCTION_CODES
    for cut in ((), (3,), (7, 20), tuple(range(1, len(stream)))):
        cabinets = {1: Cabinet(), 2: Cabinet()}
        arrivals = WriteArrivals()
        edges = [0, *cut, len(stream)]
        for n, (a, b) in enumerate(itertools.pairwise(edges)):
            arrivals.feed(stream[a:b], float(n), cabinets)  # type: ignore[arg-type]
        assert len(cabinets[1].write_times) == 2, cut
        assert len(cabinets[2].write_times) == 1, cut
        # each is stamped when the chunk holding its function code is read
        assert cabinets[1].write_times == sorted(cabinets[1].write_times)
