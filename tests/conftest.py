"""Shared fixtures: configs built in code, simulators on free loopback ports, no leftovers."""

from __future__ import annotations

import asyncio
import copy
import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from lightctl.model.config import Config
from lightctl.resolve.loading import config_from_data

ROOT = Path(__file__).resolve().parent.parent


def modbus_controller(cid: str, index: int, *, channels: int = 8, profile: str = "cabinet-8ch", **extra: Any) -> dict[str, Any]:
    dimmable = profile == "cabinet-8ch"
    return {
        "id": cid,
        "protocol": "modbus",
        "profile": profile,
        "host": "127.0.0.1",
        "port": 20000 + index,
        "unit": 1,
        "timeout_s": 0.5,
        "poll_s": 3600,
        "channels": [
            {
                "id": f"c{i}",
                "point": i,
                "dimmable": dimmable,
                "luminaires": {"count": 10 * i, "kind": "landscape" if dimmable else "street", "led": True, "watts": 20},
            }
            for i in range(1, channels + 1)
        ],
        **extra,
    }


def installation_data(controllers: list[dict[str, Any]], *, per_site: int = 10, **daemon: Any) -> dict[str, Any]:
    sites = [
        {
            "id": f"site-{n}",
            "name": f"站点{n}",
            "name_en": f"Site {n}",
            "location": {"lat": 29.56, "lon": 106.58},
            "tags": ["embankment"] if n % 2 else ["bridge"],
            "controllers": controllers[start : start + per_site],
        }
        for n, start in enumerate(range(0, len(controllers), per_site))
    ]
    return {
        "installation": {"name": "测试", "name_en": "Test", "location": {"lat": 29.56, "lon": 106.58}},
        "daemon": {"deadline_s": 2.0, "concurrency": 200, **daemon},
        "tags": ["embankment", "bridge"],
        "districts": [
            {"id": "d1", "name": "渝中", "name_en": "Yuzhong", "sites": sites[: max(1, len(sites) // 2)]},
            {"id": "d2", "name": "江北", "name_en": "Jiangbei", "sites": sites[max(1, len(sites) // 2) :]},
        ]
        if len(sites) > 1
        else [{"id": "d1", "name": "渝中", "name_en": "Yuzhong", "sites": sites}],
        "scenes": [{"id": "half", "rules": [{"target": "*", "level": 50}]}],
        "access": {"password_hash": CHEAP_HASHING},
    }


CHEAP_HASHING = {"time_cost": 1, "memory_kib": 1024, "parallelism": 1}
"""Argon2id parameters for tests: about 1 ms a hash (the default costs about 150 ms)."""


async def user_with_token(daemon: Any, name: str, role: str, *, crew: str | None = None, password: str | None = None) -> str:
    """Add a user to a daemon's records and return a new API token acting for them."""
    from lightctl.services.access import local_caller
    from lightctl.services.users.accounts import Accounts

    accounts = Accounts(daemon.store, daemon.config.access, daemon.clock)
    await accounts.add_user(local_caller(), name=name, role=role, crew=crew, password=password)
    return (await accounts.create_token(local_caller(), user=name, label="test")).secret


def local_secret(database: str | Path) -> str:
    """The local credential a daemon wrote beside its database (what the CLI on its machine sends)."""
    from lightctl.runtime.credentials import read_local_credential

    return read_local_credential(database).secret


def build_config(data: dict[str, Any]) -> Config:
    return config_from_data(copy.deepcopy(data), source="<test>")


@pytest.fixture
async def make_farm() -> AsyncIterator[Callable[..., Any]]:
    """Start a SimulatorFarm for config data on free ports; stopped at teardown."""
    from lightctl.simulation.farm import SimulatorFarm

    farms: list[SimulatorFarm] = []

    async def start(data: dict[str, Any], processes: int = 1) -> tuple[SimulatorFarm, Config]:
        config = build_config(data)
        farm = SimulatorFarm(data, config, processes=processes, any_port=True)
        farms.append(farm)
        endpoints = await farm.start()
        return farm, config.with_controller_settings(endpoints)

    yield start
    for farm in farms:
        await farm.stop()


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running behind it (a daemon that does not stop cleanly)."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    if left:
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        pytest.fail(f"test left {len(left)} task(s) running: {sorted(t.get_name() for t in left)[:5]}")


def with_endpoints(data: dict[str, Any], endpoints: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A copy of config data whose controllers point at running simulators."""
    out = copy.deepcopy(data)
    for district in out["districts"]:
        for site in district["sites"]:
            for ctrl in site.get("controllers", []):
                ctrl.update(endpoints.get(ctrl["id"], {}))
    return out


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- the store's two backends


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server of the test run's own (temporary directory, free port), stopped at the end."""
    from lightctl.process.postgres import TemporaryPostgres

    server = TemporaryPostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


_database_numbers = itertools.count(1)


@dataclass(frozen=True)
class StoreBackend:
    """Where a test's records go: ``target(name)`` gives a new, empty database (a SQLite file in
    the test's directory, or a database of the session's PostgreSQL server)."""

    kind: str
    target: Callable[[str], str]
    integrity_error: type[BaseException]
    """What a broken constraint raises through a job."""


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreBackend:
    if request.param == "sqlite":
        return StoreBackend("sqlite", lambda name: str(tmp_path / f"{name}.db"), sqlite3.IntegrityError)
    server = request.getfixturevalue("postgres")
    # a daemon on PostgreSQL keeps its own files (credential, photos) in its working directory
    request.getfixturevalue("monkeypatch").chdir(tmp_path)

    def database(name: str) -> str:
        return str(server.create_database(f"{name.lower()}_{next(_database_numbers)}"))

    return StoreBackend("postgresql", database, asyncpg.IntegrityConstraintViolationError)
