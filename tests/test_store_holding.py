"""Commands first: while a command holds the observation rows, readings wait in the buffer and
jobs (the command's own record) are written at once; the rows land when the hold ends, or when the
buffer passes half its bound."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from test_store_writer import count, eventually, opened

from lightctl.model.values import ControllerReading


def reading(at: float) -> ControllerReading:
    return ControllerReading(at, {}, 100.0, 1.0)


async def test_held_rows_wait_for_the_command_and_jobs_do_not(tmp_path: Path) -> None:
    async with opened(tmp_path / "held.db") as store:
        now = time.time()
        with store.holding_observations():
            for n in range(100):
                store.observations.record_reading("c1", reading(now + n))
            started = await store.commands.started(user="u", source="t", action="a", scene=None, target="*")
            assert started > 0  # the job went through
            await asyncio.sleep(0.3)  # well past the rows' linger
            assert await count(store, "readings") == 0
            assert store.health().observations_pending == 100
        await eventually(lambda: _count_is(store, 100))


async def test_a_buffer_half_full_is_written_even_while_held(tmp_path: Path) -> None:
    async with opened(tmp_path / "half.db", observation_limit=200) as store:
        now = time.time()
        with store.holding_observations():
            for n in range(120):
                store.observations.record_reading("c1", reading(now + n))
            await eventually(lambda: _count_is(store, 120))
        assert store.health().observations_dropped == 0


async def _count_is(store: object, expected: int) -> bool:
    return await count(store, "readings") == expected  # type: ignore[arg-type]
