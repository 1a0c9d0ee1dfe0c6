"""The simulators' shared ramp: output during a fade, and its exact integral (energy)."""

from __future__ import annotations

import pytest

from drivers.simphysics import Ramp


def test_ramp_level_and_integral() -> None:
    ramp = Ramp(start=0.0, target=1.0, t0=10.0, duration=4.0)
    assert ramp.level(9.0) == 0.0 and ramp.level(12.0) == 0.5 and ramp.level(20.0) == 1.0
    assert ramp.active(11.0) and not ramp.active(14.0)
    assert ramp.integral(10.0, 14.0) == pytest.approx(2.0)  # a triangle: half of 4 s at full
    assert ramp.integral(12.0, 16.0) == pytest.approx(0.75 * 2 + 2.0)
    assert ramp.integral(5.0, 5.0) == 0.0
    steps = 4000
    numeric = sum(ramp.level(9.0 + (i + 0.5) * 8.0 / steps) * 8.0 / steps for i in range(steps))
    assert ramp.integral(9.0, 17.0) == pytest.approx(numeric, rel=1e-6)


def test_ramp_heads_for_a_new_target_from_where_it_is() -> None:
    ramp = Ramp(start=0.0, target=1.0, t0=0.0, duration=2.0)
    ramp.go(0.0, now=1.0, duration=1.0)  # halfway up, fade back down
    assert ramp.level(1.0) == 0.5 and ramp.level(1.5) == 0.25 and ramp.level(3.0) == 0.0
    ramp.go(0.8, now=5.0, duration=0.0)
    assert ramp.level(5.0) == 0.8 and not ramp.active(5.0)
