"""Sign-in lockout with the daemon's clock frozen: per user and per address, each lockout twice
the one before, and its expiry; while locked out even the right password is refused unchecked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from lightctl.services.users.throttle import FORGET_AFTER_S, LoginThrottle
from tests.users_support import PASSWORD, FrozenClock, running_daemon


def test_lockouts_grow_and_expire() -> None:
    clock = FrozenClock()
    throttle = LoginThrottle(limit=3, first_s=60, max_s=200, clock=clock)
    assert [throttle.failed("ops") for _ in range(3)] == [0, 0, 60]
    assert throttle.wait_s("ops") == 60 and throttle.wait_s("other") == 0
    clock.advance(59.5)
    assert throttle.wait_s("ops") == 0.5
    clock.advance(0.5)
    assert throttle.wait_s("ops") == 0
    assert [throttle.failed("ops") for _ in range(3)] == [0, 0, 120]  # the second lockout: twice as long
    clock.advance(120)
    assert [throttle.failed("ops") for _ in range(3)] == [0, 0, 200]  # at most max_s
    clock.advance(200)
    throttle.succeeded("ops")  # a success forgets the user's failures and lockouts
    assert [throttle.failed("ops") for _ in range(3)] == [0, 0, 60]

    # an address keeps its lockouts across a success (a spray with one good account among many)
    for _ in range(3):
        throttle.failed("10.0.0.9")
    clock.advance(60)
    throttle.succeeded("10.0.0.9", forget_lockouts=False)
    assert [throttle.failed("10.0.0.9") for _ in range(3)] == [0, 0, 120]
    clock.advance(120 + FORGET_AFTER_S + 1)  # quiet for a day: forgotten
    assert [throttle.failed("10.0.0.9") for _ in range(3)] == [0, 0, 60]


async def _sign_in(session: aiohttp.ClientSession, url: str, name: str, password: str) -> tuple[int, dict[str, Any], str | None]:
    async with session.post(f"{url}/api/v1/session", json={"user": name, "password": password}) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


async def test_a_user_is_locked_out_and_the_lockout_ends(make_farm: Any, tmp_path: Path) -> None:
    access = {"failures_per_user": 5, "failures_per_address": 1000, "lockout_first_s": 60, "lockout_max_s": 3600}
    async with running_daemon(make_farm, tmp_path, access=access) as live, aiohttp.ClientSession() as session:
        await live.add_user("ops", "operator")
        for _ in range(5):
            status, answer, _ = await _sign_in(session, live.url, "ops", "guess " * 3)
            assert status == 401 and answer["error"] == "wrong user name or password"
        status, answer, retry = await _sign_in(session, live.url, "ops", PASSWORD)  # right, but locked out
        assert status == 429 and retry == "60" and "try again in 60 s" in answer["error"]
        live.clock.advance(59)
        status, _, retry = await _sign_in(session, live.url, "ops", PASSWORD)
        assert status == 429 and retry == "1"
        live.clock.advance(1)
        for _ in range(5):  # the lockout is over; five more failures lock it out twice as long
            assert (await _sign_in(session, live.url, "ops", "guess " * 3))[0] == 401
        status, _, retry = await _sign_in(session, live.url, "ops", PASSWORD)
        assert status == 429 and retry == "120"
        live.clock.advance(120)
        assert (await _sign_in(session, live.url, "ops", PASSWORD))[0] == 200
        for _ in range(4):  # the success forgot the failures: four more do not lock it out
            assert (await _sign_in(session, live.url, "ops", "guess " * 3))[0] == 401
        assert (await _sign_in(session, live.url, "ops", PASSWORD))[0] == 200

        # an unknown user name is counted the same (the answers do not tell which names exist)
        for _ in range(5):
            status, answer, _ = await _sign_in(session, live.url, "nobody", "guess " * 3)
            assert status == 401 and answer["error"] == "wrong user name or password"
        assert (await _sign_in(session, live.url, "nobody", "guess " * 3))[0] == 429

        refused = [r.entry for r in await live.daemon.store.audit.query(limit=100) if r.entry.path == "/api/v1/session"]
        assert {e.result for e in refused} == {"accepted", "refused"}
        assert sum(1 for e in refused if e.status == 429) == 4 and all(e.user_name in ("ops", "nobody") for e in refused)
        assert all(e.detail == f'{{"password": "(not recorded)", "user": "{e.user_name}"}}' for e in refused)


async def test_an_address_is_locked_out_whatever_names_it_tries(make_farm: Any, tmp_path: Path) -> None:
    access = {"failures_per_user": 100, "failures_per_address": 6, "lockout_first_s": 30}
    async with running_daemon(make_farm, tmp_path, access=access) as live, aiohttp.ClientSession() as session:
        await live.add_user("ops", "operator")
        for i in range(6):  # a spray: one guess at each of six names
            assert (await _sign_in(session, live.url, f"user{i}", "guess " * 3))[0] == 401
        status, _answer, retry = await _sign_in(session, live.url, "ops", PASSWORD)
        assert status == 429 and retry == "30"
        live.clock.advance(30)
        assert (await _sign_in(session, live.url, "ops", PASSWORD))[0] == 200
