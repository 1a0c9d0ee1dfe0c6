"""Pushed readings for one driver: COV subscriptions with renewal, else polling.

Each channel object is subscribed with the configured lifetime and renewed at half of it, so
one lost renewal does not let a subscription lapse (and a device that restarted, forgetting its
subscriptions, gets them back at the next renewal). A notification triggers a confirmation read
of the channels that changed (debounced), because the reading must show who holds the output,
which a notification does not carry. Power, energy and faults come from a full poll every
``cov_poll_s``. A device that refuses SubscribeCOV is polled every ``poll_s`` instead; the
subscriptions it did accept (a device with COV on some objects only) are cancelled then, and
every subscription still held is cancelled when the session stops, so none outlives the driver
at the device.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Any, Protocol

from bacpypes3.apdu import APDU, ErrorRejectAbortNack
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from drivers.bacnet import services
from drivers.bacnet.client import BacnetClient
from drivers.bacnet.errors import is_unsupported
from drivers.bacnet.settings import BacnetSettings
from drivers.base import ControllerTimeout, DriverError
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelId, ControllerReading

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.05
"""Notifications arriving this close together are confirmed by one read."""


class CovDevice(Protocol):
    """What a COV session needs of its driver (drivers.bacnet.driver.BacnetDriver)."""

    controller: ControllerConfig
    settings: BacnetSettings
    address: Address
    use_cov: bool

    @property
    def controller_id(self) -> str: ...
    @property
    def client(self) -> BacnetClient: ...
    @property
    def connected(self) -> bool: ...

    async def call(self, apdu: APDU, what: str) -> Any: ...
    async def read(self, channels: Collection[ChannelId] | None = None) -> ControllerReading: ...
    def failure(self, what: str, exc: ErrorRejectAbortNack) -> DriverError: ...
    def channel_of(self, objid: Any) -> ChannelId | None: ...
    def channel_objects(self) -> list[ObjectIdentifier]: ...


class CovSession:
    def __init__(self, device: CovDevice, on_reading: Callable[[ControllerReading], None]) -> None:
        self.device = device
        self.on_reading = on_reading
        self.process_id = device.client.process_id()
        self.live: set[ObjectIdentifier] = set()
        """Objects subscribed at the device as far as we know (accepted, or the request timed out
        and may have been)."""
        self.renewals = 0
        self.notifications = 0
        self._task: asyncio.Task[None] | None = None
        self._flush: asyncio.Task[None] | None = None
        self._changed: set[str] = set()
        self._failing = False
        self._key = (str(device.address), self.process_id)

    def start(self) -> None:
        self.device.client.app.cov_handlers[self._key] = self._notified
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"bacnet-push-{self.device.controller_id}")

    async def stop(self) -> None:
        for task in (self._task, self._flush):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._flush = None
        if not self.device.connected:
            return
        self.device.client.app.cov_handlers.pop(self._key, None)
        await self._cancel_live()

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        device = self.device
        settings = device.settings
        while True:
            if device.use_cov:
                try:
                    await self._subscribe_all(settings.cov_lifetime_s)
                    self.renewals += 1
                    self._recovered()
                except ErrorRejectAbortNack as exc:
                    if is_unsupported(exc):
                        log.info("%s: device refuses COV (%s); polling every %g s",
                                 device.controller_id, device.failure("SubscribeCOV", exc), device.controller.poll_s)
                        device.use_cov = False
                        await self._cancel_live()
                        continue
                    self._failed(device.failure("SubscribeCOV", exc))
                except DriverError as exc:
                    self._failed(exc)
                await self._poll()
                await asyncio.sleep(min(settings.cov_lifetime_s / 2, settings.cov_poll_s))
            else:
                await self._poll()
                await asyncio.sleep(device.controller.poll_s)

    async def _subscribe(self, objects: list[ObjectIdentifier], lifetime_s: int | None) -> list[BaseException | None]:
        """SubscribeCOV (``lifetime_s=None``: cancel) for each object, all at once; per object,
        the error or None."""
        device = self.device
        requests = [
            device.call(services.subscribe_request(self.process_id, objid, lifetime_s, device.address),
                        f"{objid[0]},{objid[1]} SubscribeCOV")
            for objid in objects
        ]
        results = await asyncio.gather(*requests, return_exceptions=True)
        return [result if isinstance(result, BaseException) else None for result in results]

    async def _subscribe_all(self, lifetime_s: int) -> None:
        """Subscribe (or renew) every channel object; raise the first refusal or failure."""
        objects = self.device.channel_objects()
        errors = await self._subscribe(objects, lifetime_s)
        for objid, error in zip(objects, errors, strict=True):
            if error is None or isinstance(error, ControllerTimeout):  # a timed-out one may be live
                self.live.add(objid)
            else:
                self.live.discard(objid)
        for error in errors:
            if error is not None:
                raise error

    async def _cancel_live(self) -> None:
        """Cancel the subscriptions the device may hold (a failure to is logged, not raised: the
        device then lets them lapse at the end of their lifetime)."""
        objects, self.live = sorted(self.live, key=str), set()
        if not objects:
            return
        errors = await self._subscribe(objects, None)
        failed = [(objid, error) for objid, error in zip(objects, errors, strict=True) if error is not None]
        if failed:
            objid, error = failed[0]
            log.info("%s: %d COV subscription(s) not cancelled (%s,%s: %r); they lapse in %d s",
                     self.device.controller_id, len(failed), objid[0], objid[1], error,
                     self.device.settings.cov_lifetime_s)

    async def _poll(self) -> None:
        try:
            reading = await self.device.read(None)
        except DriverError as exc:
            self._failed(exc)
            return
        self._recovered()
        self.on_reading(reading)

    def _failed(self, exc: DriverError) -> None:
        if not self._failing:
            log.warning("%s: %s", self.device.controller_id, exc)
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("%s: answering again", self.device.controller_id)
        self._failing = False

    # ------------------------------------------------------------------ notifications

    def _notified(self, objid: Any, values: list[Any]) -> None:
        channel = self.device.channel_of(objid)
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
                reading = await self.device.read(changed)
            except DriverError as exc:
                self._failed(exc)
                continue
            self.on_reading(reading)
