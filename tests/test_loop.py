"""The loop helpers a show uses: garbage collection held and run when due, short GIL switches."""

from __future__ import annotations

import gc
import sys

from lightctl.loop import collect_due, collections_held, short_switch_interval


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
