"""``lightctl bench access``: what signing in and checking every caller cost, with the config's
``access:`` settings, against the API's own floor measured in the same run.

* the password hash (Argon2id at ``access.password_hash``): hash and verify, in a thread;
* a sign-in (``POST /api/v1/session``: the hash checked, a session written);
* one request, sequential over one kept-alive connection: the floor is the sign-in page (no caller
  to find); then ``GET /api/v1/scenes`` as the local credential (compared in memory), an API
  token and a session (each a read of the records), and a refused change (its audit row written,
  one commit).

The engine is not started: no controller is reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from lightctl.model.config import Config
from lightctl.runtime.daemon import Daemon
from lightctl.services.access import local_caller
from lightctl.services.users.accounts import Accounts
from lightctl.services.users.passwords import Passwords, generate_password
from web.app import bound_port, serve
from web.context import CSRF_HEADER

LOCAL = "lcl_bench"


async def _median_us(count: int, once: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await once()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1e6, 1)


async def _hashing(config: Config, rounds: int) -> dict[str, float]:
    passwords = Passwords(config.access.password_hash, min_length=config.access.password_min_length)
    password = generate_password()
    stored = await passwords.hash(password)
    hash_us = await _median_us(rounds, lambda: passwords.hash(password))
    verify_us = await _median_us(rounds, lambda: passwords.verify(stored, password))
    return {"hash_ms": round(hash_us / 1000, 1), "verify_ms": round(verify_us / 1000, 1)}


async def run_access_bench(args: argparse.Namespace, config: Config) -> int:
    logging.getLogger("lightctl.access").setLevel(logging.WARNING)  # a line per sign-in is not the figure
    hashing = await _hashing(config, args.rounds)
    with tempfile.TemporaryDirectory(prefix="lightctl-bench-access-") as folder:
        daemon = Daemon(config, database=Path(folder) / "bench.db")
        await asyncio.to_thread(daemon.store.open)
        runner = await serve(daemon, "127.0.0.1", 0, local_credential=LOCAL)
        try:
            accounts = Accounts(daemon.store, config.access, daemon.clock)
            password = generate_password()
            await accounts.add_user(local_caller(), name="bench", role="operator", password=password)
            token = (await accounts.create_token(local_caller(), user="bench", label="bench")).secret
            url = f"http://127.0.0.1:{bound_port(runner)}"
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as browser, aiohttp.ClientSession() as script:

                async def get(session: aiohttp.ClientSession, path: str, headers: dict[str, str] | None = None) -> None:
                    async with session.get(url + path, headers=headers) as response:
                        await response.read()
                        assert response.status == 200, (path, response.status)

                async def sign_in() -> str:
                    body = {"user": "bench", "password": password}
                    async with browser.post(f"{url}/api/v1/session", json=body) as response:
                        return str((await response.json())["csrf_token"])

                sign_in_us = await _median_us(args.rounds, sign_in)
                csrf = await sign_in()

                async def refused_change() -> None:
                    async with browser.post(f"{url}/api/v1/users/nobody/enable", headers={CSRF_HEADER: csrf}) as response:
                        await response.read()
                        assert response.status == 403

                n = args.requests
                floor = await _median_us(n, lambda: get(script, "/login"))
                local = await _median_us(n, lambda: get(script, "/api/v1/scenes", {"Authorization": f"Bearer {LOCAL}"}))
                by_token = await _median_us(n, lambda: get(script, "/api/v1/scenes", {"Authorization": f"Bearer {token}"}))
                by_session = await _median_us(n, lambda: get(browser, "/api/v1/scenes"))
                audited = await _median_us(n, refused_change)
        finally:
            await runner.cleanup()
            await asyncio.to_thread(daemon.store.close)
    result = {
        "password_hash": {**config.access.password_hash.model_dump(), **hashing},
        "sign_in_ms": round(sign_in_us / 1000, 1),
        "request_us": {"floor (public page)": floor, "local credential": local, "api token": by_token,
                       "session": by_session, "refused change, audited": audited},
        "requests": n,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    ph = result["password_hash"]
    print(f"Argon2id t={ph['time_cost']} m={ph['memory_kib']} KiB p={ph['parallelism']}: hash {ph['hash_ms']} ms, "
          f"verify {ph['verify_ms']} ms (median of {args.rounds})")
    print(f"sign-in (POST /api/v1/session): {result['sign_in_ms']} ms")
    print(f"one request, median of {n} over one connection:")
    for what, us in result["request_us"].items():
        extra = "" if what.startswith("floor") else f"  ({us / floor:.2f} x the floor)"
        print(f"  {what:26} {us:8.1f} µs{extra}")
    return 0
