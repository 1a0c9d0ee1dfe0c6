"""Long-running commands: ``run`` (the daemon), ``sim`` (simulators), ``demo`` (both + console).

Each owns its event loop and stops gracefully on SIGINT/SIGTERM: the API stops taking requests,
supervisors stop, queued records are flushed, simulators are stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from drivers.base import Fault
from lightctl.config.loader import read_daemon_settings
from lightctl.federation.district import DistrictNode
from lightctl.federation.mqtt import read_password
from lightctl.model.config import Config
from lightctl.model.installation import DaemonSettings
from lightctl.process.logs import configure as configure_logs
from lightctl.runtime.credentials import (
    LocalCredential,
    first_password_path,
    new_local_credential,
    write_first_password,
    write_local_credential,
)
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.reload import ReloadRefused
from lightctl.runtime.wiring import attach_services
from lightctl.services.users.accounts import FIRST_ADMIN, Accounts
from lightctl.services.users.passwords import generate_password
from lightctl.simulation.farm import SimulatorError, SimulatorFarm, raise_open_file_limit
from schedules.builder import build as build_schedule
from web.app import bound_port, serve, tls_context

log = logging.getLogger("lightctl")


class StopSignal:
    """SIGINT/SIGTERM caught from the moment it is created: a stop asked for during start-up is
    honoured as soon as start-up is done (a service manager may stop us at any time)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.loop.add_signal_handler(sig, self.event.set)

    async def wait(self) -> None:
        try:
            await self.event.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.loop.remove_signal_handler(sig)


async def start_daemon(
    config: Config, *, database: str | None = None, api_port: int | None = None, config_path: Path | None = None
) -> tuple[Daemon, web.AppRunner]:
    raise_open_file_limit()
    settings = config.daemon
    tls = tls_context(settings.tls_cert, settings.tls_key) if settings.tls_cert and settings.tls_key else None
    daemon = attach_services(Daemon(config, database=database, config_path=config_path))
    if config.federation is not None:  # a district daemon: its Sparkplug edge node (the city has its own start)
        daemon.services.append(DistrictNode(daemon, config.federation, password=read_password(config.federation.broker)))
    daemon.schedule = build_schedule(config, daemon.inventory)
    secret = new_local_credential()
    await daemon.start(reconcile=False)
    try:
        await _first_start(daemon)
        port = settings.api_port if api_port is None else api_port
        runner = await serve(daemon, settings.api_host, port, local_credential=secret, tls=tls)
    except BaseException:
        await daemon.stop()
        raise
    url = settings.local_url(bound_port(runner))
    write_local_credential(daemon.store.path, LocalCredential(secret, url))
    _say_how_served(settings, url)
    # Operators can read status while the start-up reconcile runs; commands queue behind it.
    await daemon.reconcile("startup", source="startup", force=True)
    daemon.run_schedule()  # "reconcile now" at every schedule transition, clock jump, missed trigger
    return daemon, runner


async def _first_start(daemon: Daemon) -> None:
    """No users yet: create ``admin`` with a random password, written to a 0600 file beside the
    database (before the user exists, so that a crash cannot lose it) and printed once."""
    accounts = Accounts(daemon.store, daemon.config.access, daemon.clock)
    if await accounts.has_users():
        return
    password = generate_password()
    path = write_first_password(daemon.store.path, password)
    if not await accounts.ensure_first_admin(password):
        path.unlink(missing_ok=True)
        return
    print(
        f"lightctl: first start: user {FIRST_ADMIN!r} (role admin) created with the password\n\n    {password}\n\n"
        f"  It is also in {path} (readable by this OS user only). Sign in and change it "
        f"(lightctl user passwd {FIRST_ADMIN}); the file goes when it changes.",
        flush=True,
    )
    log.info("first start: the password of %r was printed once and is in %s", FIRST_ADMIN, path)


def _say_how_served(settings: DaemonSettings, where: str) -> None:
    if settings.tls:
        log.info("API over HTTPS on %s", where)
    elif settings.api_on_loopback:
        log.info("API over plain HTTP on %s: loopback only (daemon.tls_cert and daemon.tls_key serve HTTPS beyond "
                 "this machine)", where)
    else:
        log.warning("API over plain HTTP on %s beyond loopback (daemon.plain_http_beyond_loopback): passwords and "
                    "session cookies cross the network in clear unless a TLS-terminating proxy is the only way in", where)


async def reload_on_hangup(daemon: Daemon) -> None:
    """SIGHUP (``systemctl reload``): read and validate the config file, take what changed."""
    try:
        report = await daemon.reload_from_file()
    except ReloadRefused as exc:
        log.error("config reload refused: %s", exc)
    except Exception:
        log.exception("config reload failed; the running config is kept")
    else:
        log.info("config reloaded on SIGHUP: %s", report.as_json())


async def run_daemon(config: Config, *, verbose: bool = False, config_path: Path | None = None) -> None:
    configure_logs(config.daemon.log_format, ZoneInfo(config.installation.timezone), verbose=verbose)
    stop = StopSignal()
    daemon, runner = await start_daemon(config, config_path=config_path)
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: daemon.spawn(reload_on_hangup(daemon), "reload"))
    url = config.daemon.local_url(bound_port(runner))
    log.info("lightctl daemon running: %d controllers; API and status page at %s/", len(daemon.inventory.controllers), url)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()
        await daemon.stop()


def simulator_control_app(farm: SimulatorFarm) -> web.Application:
    """A small HTTP interface to inject and clear faults in running simulators."""

    async def inject(request: web.Request) -> web.Response:
        data = await request.json()
        try:
            fault = Fault(str(data["kind"]), data.get("channel"), data.get("value"))
            await farm.inject(request.match_info["controller_id"], fault)
        except (KeyError, TypeError) as exc:
            return web.json_response({"error": f"bad fault: {exc}"}, status=400)
        except SimulatorError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def clear(request: web.Request) -> web.Response:
        try:
            await farm.clear(request.match_info["controller_id"], request.query.get("kind"))
        except SimulatorError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def counts(request: web.Request) -> web.Response:
        return web.json_response(await farm.request_counts())

    async def kinds(request: web.Request) -> web.Response:
        return web.json_response(await farm.fault_kinds())

    app = web.Application()
    app.router.add_post("/sim/{controller_id}/faults", inject)
    app.router.add_delete("/sim/{controller_id}/faults", clear)
    app.router.add_get("/sim/requests", counts)
    app.router.add_get("/sim/fault-kinds", kinds)
    return app


async def start_simulators(config: Config, source: str | Mapping[str, Any], processes: int) -> tuple[SimulatorFarm, web.AppRunner]:
    farm = SimulatorFarm(source, config, processes=processes)
    await farm.start()
    runner = web.AppRunner(simulator_control_app(farm), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.daemon.api_host, config.daemon.sim_control_port).start()
    return farm, runner


async def run_simulators(config: Config, config_path: Path, processes: int) -> None:
    stop = StopSignal()
    farm, runner = await start_simulators(config, str(config_path), processes)
    log.info(
        "%d simulated controllers in %d process(es); fault control at http://%s:%d/sim/",
        len(farm.owner), len(farm.workers), config.daemon.api_host, config.daemon.sim_control_port,
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await farm.stop()


async def run_demo(config: Config, config_path: Path, processes: int, *, verbose: bool = False) -> None:
    configure_logs(config.daemon.log_format, ZoneInfo(config.installation.timezone), verbose=verbose)
    stop = StopSignal()
    farm, sim_runner = await start_simulators(config, str(config_path), processes)
    try:
        daemon, runner = await start_daemon(config, config_path=config_path)
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: daemon.spawn(reload_on_hangup(daemon), "reload"))
    except BaseException:
        await sim_runner.cleanup()
        await farm.stop()
        raise
    url = config.daemon.local_url(bound_port(runner))
    print(f"lightctl demo: {len(farm.owner)} simulated controllers, daemon and console running.", flush=True)
    print(f"Console: {url}/", flush=True)
    print(f"Faults: POST http://{config.daemon.api_host}:{config.daemon.sim_control_port}/sim/<controller>/faults", flush=True)
    port = bound_port(runner)
    print(f"Sign in as {FIRST_ADMIN}: its password was printed at the first start and is in "
          f"{first_password_path(daemon.store.path)} until it is changed", flush=True)
    api = "" if port == read_daemon_settings(config_path).api_port else f"--url {url} "
    print(f"Try: .venv/bin/lightctl {api}scene apply all-on --json    (Ctrl-C stops everything)", flush=True)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        await daemon.stop()
        await sim_runner.cleanup()
        await farm.stop()
