"""A daemon and its simulators on an event loop of their own, in a thread, for a browser driven
from the calling thread with Playwright's synchronous API (which refuses to run inside a running
event loop): the console's browser tests and ``lightctl bench console``.

Everything is real: the simulators in worker processes, the daemon with its store, API and
WebSocket on a free loopback port. :meth:`ThreadedDaemon.call` runs a coroutine on the daemon's
loop (to inject a fault through the farm, say) and waits for it.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from lightctl.model.config import Config
from lightctl.process.service import start_daemon
from lightctl.resolve.loading import config_from_data
from lightctl.runtime.credentials import read_local_credential
from lightctl.runtime.daemon import Daemon
from lightctl.simulation.farm import SimulatorFarm, raise_open_file_limit
from web.app import bound_port

T = TypeVar("T")

START_TIMEOUT_S = 180.0
CALL_TIMEOUT_S = 120.0

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Debian's Chromium on a machine with no network beyond loopback (see make browser)."""


def chromium_path() -> str | None:
    """Debian's Chromium (``make browser`` installs it); Playwright never downloads a browser here."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class ThreadedDaemon:
    def __init__(self, data: dict[str, Any], database: Path, *, processes: int = 1) -> None:
        self.data = data
        self.database = database
        self.processes = processes
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run_loop, name="console-daemon", daemon=True)
        self.farm: SimulatorFarm | None = None
        self.config: Config | None = None
        self._daemon: Daemon | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.token = ""

    @property
    def daemon(self) -> Daemon:
        assert self._daemon is not None, "the daemon is not started"
        return self._daemon

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run ``make()`` on the daemon's loop and wait for its result."""

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def __enter__(self) -> ThreadedDaemon:
        self.thread.start()
        try:
            self.call(self._start, timeout=START_TIMEOUT_S)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        raise_open_file_limit()
        config = config_from_data(self.data, source="<console>")
        self.farm = SimulatorFarm(self.data, config, processes=self.processes, any_port=True)
        endpoints = await self.farm.start()
        self.config = config.with_controller_settings(endpoints)
        self._daemon, self._runner = await start_daemon(self.config, database=str(self.database), api_port=0)
        self.url = f"http://127.0.0.1:{bound_port(self._runner)}"
        self.token = read_local_credential(self._daemon.store.path).secret  # the local caller (admin)

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._daemon is not None:
            await self._daemon.stop()
        if self.farm is not None:
            await self.farm.stop()

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            try:
                self.call(self._stop)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout=30)
        self.loop.close()
