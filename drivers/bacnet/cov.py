"""Pushed readings for one driver: COV subscriptions with renewal, else polling.

Each channel object is subscribed with the configured lifetime and renewed at half of it, so
one lost renewal does not let a subscription lapse (and a device that restarted, forgetting its
subscriptions, gets them back at the next renewal). A notification triggers a confirmation read
of the channels that changed (debounced), because the reading must show who holds the output,
which a notification does not carry. Power, energy and faults come from a full poll every
``cov_poll_s``. A device that refuses SubscribeCOV is polled every ``poll_s`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bacpypes3.apdu import ErrorRejectAbortNack

from drivers.bacnet import services
from drivers.bacnet.errors import is_unsupported
from drivers.base import DriverError
from lightctl.model.values import ControllerReading

if TYPE_CHECKING:
    from drivers.bacnet.driver import BacnetDriver

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.05
"""Notifications arriving this close together are confirmed by one read."""


class CovSession:
    def __init__(self, driver: BacnetDriver, on_reading: Callable[[ControllerReading], None]) -> None:
        self.driver = driver
        self.on_reading = on_reading
        self.process_id = driver.client.process_id()
        self.subscribed = False
        self.renewals = 0
        self.notifications = 0
        self._task: asyncio.Task[None] | None = None
        self._flush: asyncio.Task[None] | None = None
        self._changed: set[str] = set()
        self._failing = False
        self._key = (str(driver.address), self.process_id)

    def start(self) -> None:
        self.driver.client.app.cov_handlers[self._key] = self._notified
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"bacnet-push-{self.driver.controller_id}")

    async def stop(self) -> None:
        for task in (self._task, self._flush):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._flush = None
        client = self.driver._client
        if client is None:
            return
        client.app.cov_handlers.pop(self._key, None)
        if self.subscribed:
            with contextlib.suppress(DriverError, ErrorRejectAbortNack):
                await self._subscribe_all(None)

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        driver = self.driver
        settings = driver.settings
        while True:
            if driver.use_cov:
                try:
                    await self._subscribe_all(settings.cov_lifetime_s)
                    self.subscribed = True
                    self.renewals += 1
                    self._recovered()
                except ErrorRejectAbortNack as exc:
                    if is_unsupported(exc):
                        log.info("%s: device refuses COV (%s); polling every %g s",
                                 driver.controller_id, driver._fail("SubscribeCOV", exc), driver.controller.poll_s)
                        driver.use_cov = False
                        self.subscribed = False
                        continue
                    self._failed(driver._fail("SubscribeCOV", exc))
                except DriverError as exc:
                    self._failed(exc)
                await self._poll()
                await asyncio.sleep(min(settings.cov_lifetime_s / 2, settings.cov_poll_s))
            else:
                await self._poll()
                await asyncio.sleep(driver.controller.poll_s)

    async def _subscribe_all(self, lifetime_s: int | None) -> None:
        driver = self.driver
        objects = [services.object_id(ref) for ref in driver.points.values()]
        requests = [
            driver.call(services.subscribe_request(self.process_id, objid, lifetime_s, driver.address),
                        f"{objid[0]},{objid[1]} SubscribeCOV")
            for objid in objects
        ]
        results = await asyncio.gather(*requests, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _poll(self) -> None:
        try:
            reading = await self.driver.read(None)
        except DriverError as exc:
            self._failed(exc)
            return
        self._recovered()
        self.on_reading(reading)

    def _failed(self, exc: DriverError) -> None:
        if not self._failing:
            log.warning("%s: %s", self.driver.controller_id, exc)
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("%s: answering again", self.driver.controller_id)
        self._failing = False

    # ------------------------------------------------------------------ notifications

    def _notified(self, objid: Any, values: list[Any]) -> None:
        channel = self.driver._by_object.get(f"{objid[0]},{objid[1]}")
        if channel is None:
            return
        self.notifications += 1
        self._changed.add(channel)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._confirm())

    async def _confirm(self) -> None:
        while self._changed:
            await asyncio.sleep(DEBOUNCE_S)
            changed, self._changed = self._changed, set()
            try:
                reading = await self.driver.read(changed)
            except DriverError as exc:
                self._failed(exc)
                continue
            self.on_reading(reading)
