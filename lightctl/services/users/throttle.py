"""Sign-in lockout: after ``limit`` failures in a row for one key (a user name, or an address) the
key is locked out for a while, each further lockout twice as long as the one before, up to a
longest one. While locked out a sign-in is refused without its password being checked. A success
forgets the key's failures; a key quiet for :data:`FORGET_AFTER_S` is forgotten as well.

The state is kept in the daemon's memory (a restart forgets it: an attacker cannot restart the
daemon) and its clock is the daemon's, so tests freeze it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

FORGET_AFTER_S = 86_400.0
CAPACITY = 10_000
"""Keys remembered at most (failed sign-ins with made-up user names must not fill the memory);
when full, keys not locked out are forgotten, those whose last failure is oldest first."""


@dataclass(slots=True)
class _Failures:
    count: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    def __init__(self, *, limit: int, first_s: float, max_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.first_s = first_s
        self.max_s = max_s
        self.clock = clock
        self._keys: dict[str, _Failures] = {}

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        state = self._current(key)
        return 0.0 if state is None else max(0.0, state.locked_until - self.clock())

    def failed(self, key: str) -> float:
        """Count a failure; the lockout it starts, in seconds (0 if none)."""
        now = self.clock()
        state = self._current(key)
        if state is None:
            if len(self._keys) >= CAPACITY:
                self._make_room(now)
            state = self._keys[key] = _Failures()
        state.count += 1
        state.last_failure = now
        if state.count < self.limit:
            return 0.0
        state.count = 0
        state.lockouts += 1
        lockout = min(self.first_s * 2.0 ** (state.lockouts - 1), self.max_s)
        state.locked_until = now + lockout
        return lockout

    def succeeded(self, key: str, *, forget_lockouts: bool = True) -> None:
        """A success: the key's failures are forgotten; with ``forget_lockouts`` False its past
        lockouts still count (an address: one good sign-in among a spray of guesses at other
        user names must not reset how long its next lockout lasts)."""
        if forget_lockouts:
            self._keys.pop(key, None)
        elif (state := self._keys.get(key)) is not None:
            state.count = 0

    def _current(self, key: str) -> _Failures | None:
        state = self._keys.get(key)
        if state is not None and self.clock() - max(state.last_failure, state.locked_until) > FORGET_AFTER_S:
            del self._keys[key]
            return None
        return state

    def _make_room(self, now: float) -> None:
        unlocked = sorted((s.last_failure, k) for k, s in self._keys.items() if s.locked_until <= now)
        for _, key in unlocked[: max(1, len(self._keys) // 10)]:
            del self._keys[key]
