"""Passwords: Argon2id hashes (argon2-cffi) whose parameters are stored in the hash itself, so a
hash made with other parameters than the configured ones is found and replaced at the next
sign-in. Hashing runs in a thread, a few at a time: it costs about 150 ms of a core with the
default parameters and must never stop the event loop (a show's beat) nor, with many sign-in
attempts at once, take every core. No password is ever logged, returned or kept."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from lightctl.model.access import PasswordHashSettings

T = TypeVar("T")

CONCURRENT_HASHES = 2
"""Hashes computed at once (the machine has 2 cores; more would only queue in the kernel)."""

MAX_PASSWORD_LENGTH = 1024


class PasswordRefused(ValueError):
    """A new password that the policy refuses; the message never contains the password."""


@dataclass(frozen=True, slots=True)
class Verified:
    ok: bool
    new_hash: str | None = None
    """The same password hashed with the current parameters, when the stored hash used others."""


def generate_password() -> str:
    """A random password of 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)


class Passwords:
    def __init__(self, settings: PasswordHashSettings, *, min_length: int) -> None:
        self.min_length = min_length
        self._hasher = PasswordHasher(
            time_cost=settings.time_cost,
            memory_cost=settings.memory_kib,
            parallelism=settings.parallelism,
            type=Type.ID,
        )
        self._slots: asyncio.Semaphore | None = None
        self._decoy: str | None = None

    def check_policy(self, name: str, password: str) -> None:
        if len(password) < self.min_length:
            raise PasswordRefused(f"the password is too short: at least {self.min_length} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise PasswordRefused(f"the password is too long: at most {MAX_PASSWORD_LENGTH} characters")
        if password.strip().casefold() == name.casefold():
            raise PasswordRefused("the password must not be the user name")
        if not password.isprintable() or not password.strip():
            raise PasswordRefused("the password must be printable characters, not only spaces")
        if len(set(password)) < 4:
            raise PasswordRefused("the password must have at least 4 different characters")

    async def hash(self, password: str) -> str:
        return await self._run(lambda: self._hasher.hash(password))

    async def verify(self, stored: str, password: str) -> Verified:
        def check() -> Verified:
            try:
                self._hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return Verified(False)
            if self._hasher.check_needs_rehash(stored):
                return Verified(True, self._hasher.hash(password))
            return Verified(True)

        return await self._run(check)

    async def prepare_decoy(self) -> None:
        """Make the hash :meth:`verify_nobody` checks against, before the first sign-in is timed
        (a first unknown name must not take a hash longer than a known one)."""
        if self._decoy is None:
            self._decoy = await self.hash(generate_password())

    async def verify_nobody(self, password: str) -> None:
        """Spend the time a real check takes (an unknown or disabled user): the answer's timing
        must not tell which user names exist."""
        await self.prepare_decoy()
        assert self._decoy is not None
        await self.verify(self._decoy, password)

    async def _run(self, work: Callable[[], T]) -> T:
        if self._slots is None:
            self._slots = asyncio.Semaphore(CONCURRENT_HASHES)
        async with self._slots:
            return await asyncio.to_thread(work)
