"""A long absence in compressed time (issue 18): controllers of every protocol away for most of a
night come back and are not forgotten, never retried slower than the backoff's cap nor faster,
and the one switch during the absence is answered for everyone else."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from drivers.base import Fault
from lightctl.reconcile.outcomes import ConvergedEvent, EngineEvent, EngineSettings, LinkEvent, Status
from lightctl.reconcile.reconnect import Backoff, Pace
from tests.chaos_support import (
    DEADLINE_S,
    LOW,
    MARGIN_S,
    ON,
    TIMEOUT_S,
    assert_failures_named,
    assert_healthy_switched,
    by_protocol,
    mixed_field,
    wait_until,
)

SPEED = 2400.0
"""Compressed seconds per real second: nine hours in 13.5 s."""
CAP_S = 30.0
"""The backoff's cap (the engine's default ``retry_max_s``), in compressed seconds."""
JITTER = 0.25


def test_backoff_stays_at_its_cap_however_long_the_absence() -> None:
    """A night of failures at the cap's pace is over a thousand attempts; the delay never grows
    past the cap (nor fails: 2.0 ** 1024 overflows a float)."""
    backoff = Backoff(initial_s=0.5, maximum_s=CAP_S, jitter=JITTER)
    delays = [backoff.next_delay() for _ in range(5000)]
    assert max(delays) <= CAP_S * (1 + JITTER)
    assert min(delays[20:]) >= CAP_S * (1 - JITTER)


async def test_a_night_away_then_back(make_farm: Any) -> None:
    pace = Pace(speed=SPEED)
    settings = EngineSettings(deadline_s=DEADLINE_S, retry_initial_s=0.5, retry_max_s=CAP_S, polling=True)
    async with mixed_field(make_farm, 8, settings=settings, pace=pace, poll_s=30.0) as field:
        groups = by_protocol(field.config)
        away = [ids[0] for ids in groups.values()]
        healthy = [cid for cid in field.ids if cid not in away]
        attempts: dict[str, int] = defaultdict(int)
        links: dict[str, list[str]] = defaultdict(list)

        def note(event: EngineEvent) -> None:
            if isinstance(event, ConvergedEvent):
                attempts[event.outcome.controller_id] += 1
            elif isinstance(event, LinkEvent):
                links[event.controller_id].append(event.state.value)

        field.engine.listeners.append(note)
        assert_healthy_switched(await field.switch(ON), field.ids)

        for cid in away:
            await field.farm.inject(cid, Fault("offline"))
        outcome = await field.switch(LOW, away)  # they miss this one, and are retried from now on
        assert_failures_named(outcome, away, {"unreachable", "timeout", "in_doubt"})
        started = pace.now()
        night_s = 9 * 3600.0
        ahead: dict[str, float] = defaultdict(float)
        while pace.now() - started < night_s:  # the supervisors retry on the compressed clock
            await asyncio.sleep(0.1)
            for cid in away:
                rt = field.engine.runtimes[cid]
                ahead[cid] = max(ahead[cid], max(rt.converge_at, rt.link.retry_at) - pace.now())

        # The one switch late in the night: the others answer within their deadline, the
        # absent ones are reported at once, and nothing raises.
        before = time.perf_counter()
        outcome = await field.switch(ON)
        assert time.perf_counter() - before < DEADLINE_S + MARGIN_S
        assert_healthy_switched(outcome, healthy)
        assert_failures_named(outcome, away, {"unreachable", "timeout", "in_doubt"})

        # All night: known to be away (one offline event, no false recovery), the next retry
        # never further off than the cap, retried at about the cap's pace (each attempt also
        # takes its own time: a silent BACnet device its whole timeout), never faster.
        for cid in away:
            assert links[cid] == ["offline"], (cid, links[cid][:6])
            assert ahead[cid] <= CAP_S * (1 + JITTER), (cid, ahead[cid])
            cost = TIMEOUT_S * SPEED if cid.startswith("bn") else 0.0
            paced = night_s / (CAP_S + cost)
            assert paced / 4 <= attempts[cid] <= night_s / (CAP_S * (1 - JITTER)) + 20, (cid, attempts[cid], paced)

        # Back: each converges at its next retry, within the cap (compressed) and one attempt.
        for cid in away:
            await field.farm.clear(cid, "offline")
        back = time.perf_counter()
        within = CAP_S * (1 + JITTER) / SPEED + DEADLINE_S + MARGIN_S
        assert await wait_until(lambda: not field.engine.unconfirmed(), within), field.engine.unconfirmed()
        for cid in away:
            assert links[cid][-1] == "online", cid
        assert all(
            o.status is Status.CONFIRMED for o in (await field.switch(LOW)).controllers.values()
        ), "a controller back after the night does not take the next switch"
        print(f"back and confirmed in {time.perf_counter() - back:.2f} s; attempts overnight {dict(attempts)}")
