"""Taking an asyncio lock or semaphore without awaiting, for the synchronous send at a show's beat."""

from __future__ import annotations

import asyncio


def try_acquire(lock: asyncio.Lock | asyncio.Semaphore) -> bool:
    """Acquire ``lock`` now if it is free and nobody waits for it; False, changing nothing, if not.

    An uncontended ``acquire()`` completes without suspending, so its coroutine is run by
    hand here for one step; one that would have to wait is closed, which withdraws its place
    in the queue."""
    if lock.locked():
        return False
    attempt = lock.acquire()
    try:
        attempt.send(None)
    except StopIteration:
        return True
    attempt.close()
    return False
