"""Physics shared by the simulators: a lamp's output follows a linear ramp, evaluated lazily so
that thousands of idle simulated devices cost nothing between requests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Ramp:
    """Output going linearly from ``start`` to ``target`` over ``duration`` seconds from ``t0``
    (a fade); at and after its end, and with no duration, the output is ``target``."""

    start: float = 0.0
    target: float = 0.0
    t0: float = 0.0
    duration: float = 0.0

    def level(self, now: float) -> float:
        if self.duration <= 0 or now >= self.t0 + self.duration:
            return self.target
        return self.start + (self.target - self.start) * max(0.0, now - self.t0) / self.duration

    def active(self, now: float) -> bool:
        return self.duration > 0 and now < self.t0 + self.duration

    def integral(self, a: float, b: float) -> float:
        """Exact integral of ``level`` over [a, b] (level-seconds): energy over a fade is exact."""
        if b <= a:
            return 0.0
        if self.duration <= 0:
            return self.target * (b - a)
        before = 0.0
        if a < self.t0:  # before the fade began, the output was where it started from
            before = self.start * (min(b, self.t0) - a)
            a = min(b, self.t0)
        end = self.t0 + self.duration
        if a >= end:
            return before + self.target * (b - a)
        m = min(b, end)
        return before + (self.level(a) + self.level(m)) / 2 * (m - a) + self.target * max(0.0, b - end)

    def go(self, target: float, now: float, duration: float) -> None:
        """Head for ``target`` from wherever the output is now."""
        self.start, self.target, self.t0, self.duration = self.level(now), target, now, duration
