"""The federation in a process: a district daemon's edge node attached to it, the city daemon with
its API (``lightctl run`` with ``federation.role: city``), and ``lightctl demo --federated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from lightctl.config.loader import read_yaml
from lightctl.federation.city import CityDaemon
from lightctl.federation.mqtt import read_password
from lightctl.model.config import Config
from lightctl.process.logs import configure as configure_logs
from lightctl.process.mosquitto import Mosquitto
from lightctl.process.service import StopSignal, start_daemon, start_simulators
from lightctl.resolve.loading import config_from_data
from lightctl.resolve.split import district_configs
from lightctl.runtime.credentials import LocalCredential, new_local_credential, write_local_credential
from web.app import bound_port
from web.city import serve_city

log = logging.getLogger("lightctl")

CITY = "city"


def is_city(config: Config) -> bool:
    return config.federation is not None and config.federation.role == "city"


async def start_city(
    config: Config, *, database: str | None = None, api_port: int | None = None, config_path: Path | None = None
) -> tuple[CityDaemon, web.AppRunner]:
    assert config.federation is not None
    city = CityDaemon(config, database=database, password=read_password(config.federation.broker), config_path=config_path)
    await city.start()
    try:
        secret = new_local_credential()
        port = config.daemon.api_port if api_port is None else api_port
        runner = await serve_city(city, config.daemon.api_host, port, local_credential=secret)
        url = config.daemon.local_url(bound_port(runner))
        write_local_credential(city.store.path, LocalCredential(secret, url))
    except BaseException:
        await city.stop()
        raise
    return city, runner


async def run_city(config: Config, *, verbose: bool = False, config_path: Path | None = None) -> None:
    """``lightctl run`` with ``federation.role: city``: until SIGINT or SIGTERM."""
    configure_logs(config.daemon.log_format, ZoneInfo(config.installation.timezone), verbose=verbose)
    stop = StopSignal()
    city, runner = await start_city(config, config_path=config_path)
    url = f"http://{config.daemon.api_host}:{bound_port(runner)}/"
    log.info("lightctl city daemon running: %d district(s) expected; API and status page at %s",
             len(city.mirror.districts), url)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()
        await city.stop()


# -- lightctl demo --federated ---------------------------------------------------------------


def split_by_district(data: Mapping[str, Any], broker: Mosquitto, work: Path, *, city_port: int) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The shipped config as one district daemon's config per district (its own database in
    ``work`` and broker user, its API on any free port) and the city's (no districts, the
    districts it expects, its API on ``city_port``, ``city.db`` beside the config's database)."""
    districts = district_configs(data)
    names = list(districts)
    for name, own in districts.items():
        own["daemon"] = {**own.get("daemon", {}), "api_port": 0, "database": str(work / f"{name}.db")}
        own["federation"] = {"role": "district", "group": broker.group, "node": name, "host": CITY,
                             "broker": _broker(broker, name)}
    city = {
        "installation": copy.deepcopy(data["installation"]),
        # Beside the config's own database: the CLI finds the city's API token where it looks for the daemon's.
        "daemon": {**data.get("daemon", {}), "api_port": city_port,
                   "database": str(Path(data.get("daemon", {}).get("database", "var/lightctl.db")).parent / "city.db")},
        "federation": {"role": "city", "group": broker.group, "host": CITY, "districts": names, "broker": _broker(broker, CITY),
                       "command_timeout_s": 15},
    }
    return districts, city


def _broker(broker: Mosquitto, user: str) -> dict[str, Any]:
    return broker.settings(user).model_dump(mode="json")


async def run_federated_demo(config: Config, config_path: Path, processes: int, *, verbose: bool = False) -> None:
    """Mosquitto, the simulators, a district daemon per district of the shipped config, and the
    city daemon with its console: every daemon in this process, each on its own port."""
    configure_logs(config.daemon.log_format, ZoneInfo(config.installation.timezone), verbose=verbose)
    stop = StopSignal()
    data = json.loads(json.dumps(read_yaml(config_path, lines=False)))
    ids = [d["id"] for d in data["districts"]]
    broker = Mosquitto(group="lightctl", city=CITY, districts=ids)
    await asyncio.to_thread(broker.start)
    work = Path(tempfile.mkdtemp(prefix="lightctl-demo-"))
    district_data, city_data = split_by_district(data, broker, work, city_port=config.daemon.api_port)
    farm, sim_runner = await start_simulators(config, str(config_path), processes)
    started: list[tuple[Any, web.AppRunner]] = []
    try:
        city_config = config_from_data(city_data, source="<demo city>")
        city, city_runner = await start_city(city_config)
        started.append((city, city_runner))
        for district in ids:
            own = config_from_data(district_data[district], source=f"<demo {district}>")
            daemon, runner = await start_daemon(own)
            started.append((daemon, runner))
        print(f"lightctl demo --federated: Mosquitto on 127.0.0.1:{broker.port} (TLS, a user per district),"
              f" {len(ids)} district daemons, the city daemon; {len(farm.owner)} simulated controllers.", flush=True)
        print(f"City console: http://127.0.0.1:{bound_port(city_runner)}/", flush=True)
        for n, district in enumerate(ids):
            print(f"  district {district}: http://127.0.0.1:{bound_port(started[n + 1][1])}/", flush=True)
        print(f"Try: .venv/bin/lightctl --api http://127.0.0.1:{bound_port(city_runner)} scene apply all-on --json"
              "    (Ctrl-C stops everything)", flush=True)
        await stop.wait()
    finally:
        for runner_owner, runner in reversed(started):
            with contextlib.suppress(Exception):
                await runner.cleanup()
            await runner_owner.stop()
        await sim_runner.cleanup()
        await farm.stop()
        await asyncio.to_thread(broker.stop)
        shutil.rmtree(work, ignore_errors=True)
