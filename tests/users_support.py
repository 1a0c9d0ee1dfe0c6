"""A daemon with its API on a free port and a clock the test moves, for the tests of users, roles,
sessions and the audit (tests/test_users_*.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from lightctl.runtime.daemon import Daemon
from lightctl.runtime.wiring import attach_services
from lightctl.services.access import local_caller
from lightctl.services.users.accounts import Accounts
from tests.conftest import installation_data, modbus_controller
from web.app import bound_port, serve

START = 1_800_000_000.0
"""2027-01-15T16:00:00+08:00: any fixed instant will do."""
PASSWORD = "correct horse battery staple"
"""The password of every user the tests make (never printed, logged or answered)."""
LOCAL = "lcl_the-local-credential-of-this-test"


class FrozenClock:
    """The daemon's clock (``Daemon(clock=...)``), moved only by the test."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Running:
    daemon: Daemon
    runner: web.AppRunner
    clock: FrozenClock
    url: str
    accounts: Accounts

    async def add_user(self, name: str, role: str, *, crew: str | None = None, password: str = PASSWORD) -> None:
        await self.accounts.add_user(local_caller(), name=name, role=role, crew=crew, password=password)

    async def token(self, user: str, *, role: str | None = None, days: int | None = None) -> str:
        new = await self.accounts.create_token(local_caller(), user=user, label="test", role=role, days=days)
        return new.secret


@contextlib.asynccontextmanager
async def running_daemon(
    make_farm: Callable[..., Any], tmp_path: Path, *, access: dict[str, Any] | None = None, database: str | None = None,
    **daemon_settings: Any,
) -> AsyncIterator[Running]:
    """One simulated Modbus cabinet, a daemon on a frozen clock, its API on a free port with the
    local credential :data:`LOCAL`; its records in ``database`` (default: SQLite in ``tmp_path``)."""
    data = installation_data([modbus_controller("m0", 0)], api_port=0, **daemon_settings)
    data["access"].update(access or {})
    _farm, config = await make_farm(data)
    clock = FrozenClock()
    daemon = attach_services(Daemon(config, database=database or tmp_path / "users.db", clock=clock))
    await daemon.start()
    try:
        runner = await serve(daemon, "127.0.0.1", 0, local_credential=LOCAL)
        try:
            accounts = Accounts(daemon.store, config.access, clock)
            yield Running(daemon, runner, clock, f"http://127.0.0.1:{bound_port(runner)}", accounts)
        finally:
            await runner.cleanup()
    finally:
        await daemon.stop()


async def sign_in(session: aiohttp.ClientSession, url: str, name: str, password: str = PASSWORD) -> str:
    """Sign ``session`` in (its cookie jar keeps the session); the CSRF token."""
    async with session.post(f"{url}/api/v1/session", json={"user": name, "password": password}) as response:
        answer = await response.json()
        assert response.status == 200, answer
        return str(answer["csrf_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies of an IP address (aiohttp's jar refuses them by default), as a
    browser does."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
