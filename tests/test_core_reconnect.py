"""The reconnect policy: capped exponential backoff with jitter; state changes logged once."""

from __future__ import annotations

import logging

import pytest

from lightctl.model.values import LinkState
from lightctl.reconcile.reconnect import Backoff, Link


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(initial_s=0.5, maximum_s=8.0, jitter=0.25)
    delays = [backoff.next_delay() for _ in range(10)]
    for attempt, delay in enumerate(delays):
        base = min(8.0, 0.5 * 2**attempt)
        assert base * 0.75 <= delay <= base * 1.25
    assert max(delays) <= 10.0
    assert len({round(d, 6) for d in delays[-5:]}) > 1  # jitter: not all retries at one instant
    backoff.reset()
    assert backoff.next_delay() <= 0.5 * 1.25


def test_link_logs_the_first_failure_and_the_recovery_only(caplog: pytest.LogCaptureFixture) -> None:
    link = Link("cab-01", Backoff(initial_s=1.0))
    caplog.set_level(logging.INFO, logger="lightctl.link")
    assert link.failed("refused") is True
    assert link.failed("refused") is False
    assert link.failed("timeout") is False
    assert link.state is LinkState.OFFLINE and link.last_error == "timeout" and link.retry_at > 0
    assert link.succeeded() is True
    assert link.succeeded() is False
    assert link.state is LinkState.ONLINE and link.retry_at == 0.0 and link.backoff.attempts == 0
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "offline: refused" in messages[0] and "back online" in messages[1]
