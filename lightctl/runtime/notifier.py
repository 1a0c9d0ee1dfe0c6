"""Delivers the notification outbox: a JSON POST per row, signed (``services.faults.notify``),
with a timeout, retried with capped, jittered backoff until ``give_up_after_h``; every attempt is
recorded with its HTTP status or error. Rows are in the store, so a restart resumes where it
stopped (a delivery cut short by a kill is sent again: receivers drop duplicates by the
``X-Lightctl-Delivery`` header)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp

from lightctl.model.faults import Delivery as DeliverySettings
from lightctl.model.faults import FaultsConfig, Webhook
from lightctl.model.times import now_ms
from lightctl.services.faults import notify
from lightctl.store import Store, StoreWriteFailed
from lightctl.store.outbox import Attempt, Delivery

log = logging.getLogger("lightctl.notify")

IDLE_S = 30.0
"""Longest wait between two looks at the outbox when nothing is due and nobody wakes us."""
PARALLEL = 8
BATCH = 100


class Notifier:
    def __init__(self, store: Store, config: Callable[[], FaultsConfig]) -> None:
        self.store = store
        self.config = config
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.failed_attempts = 0

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def run(self) -> None:
        while True:
            try:
                while await self.deliver_due() == BATCH:
                    pass
                next_due = await self.store.outbox.next_due()
            except StoreWriteFailed as exc:
                log.warning("notifications: the store cannot record attempts (%s); retrying", exc)
                next_due = None
            except Exception:
                log.exception("notifications: delivery round failed")
                next_due = None
            wait = IDLE_S if next_due is None else min(IDLE_S, max(0.05, (next_due - now_ms()) / 1000))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Try every delivery due now; how many were tried."""
        due = await self.store.outbox.due(now_ms(), BATCH)
        if not due:
            return 0
        config = self.config()
        hooks = {hook.id: hook for hook in config.webhooks}
        gate = asyncio.Semaphore(PARALLEL)

        async def one(delivery: Delivery) -> None:
            async with gate:
                await self._deliver(delivery, hooks.get(delivery.webhook_id), config.delivery)

        await asyncio.gather(*(one(d) for d in due))
        return len(due)

    async def _deliver(self, delivery: Delivery, hook: Webhook | None, settings: DeliverySettings) -> None:
        started = time.perf_counter()
        at = now_ms()
        status: int | None = None
        error: str | None = None
        secret = notify.secret_of(hook) if hook is not None else None
        if hook is None:
            error = f"webhook {delivery.webhook_id!r} is no longer configured"
        elif secret is None:
            error = f"webhook {hook.id!r}: its secret ({hook.secret_env}) is not set"
        else:
            status, error = await self._post(delivery, hook, secret, settings.timeout_s)
        ok = status is not None and 200 <= status < 300
        attempt = Attempt(at, status, None if ok else error or f"HTTP {status}", time.perf_counter() - started)
        retry_at: int | None = None
        if not ok:
            self.failed_attempts += 1
            too_old = at - delivery.created_at >= settings.give_up_after_h * 3_600_000
            if hook is not None and not too_old:
                retry_at = at + round(notify.retry_delay_s(delivery.attempts + 1, settings) * 1000)
            else:
                log.error("notification #%d (%s to %s) given up: %s", delivery.id, delivery.event, delivery.webhook_id, attempt.error)
        else:
            self.delivered += 1
        await self.store.outbox.attempted(delivery.id, attempt, delivered=ok, retry_at=retry_at)

    async def _post(self, delivery: Delivery, hook: Webhook, secret: bytes, timeout_s: float) -> tuple[int | None, str | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = delivery.body.encode()
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            notify.EVENT_HEADER: delivery.event,
            notify.DELIVERY_HEADER: str(delivery.id),
            notify.TIMESTAMP_HEADER: str(stamp),
            notify.SIGNATURE_HEADER: notify.signature(secret, stamp, body),
        }
        try:
            async with asyncio.timeout(timeout_s), self._session.post(hook.url, data=body, headers=headers) as response:
                await response.read()
                return response.status, None if response.status < 300 else f"HTTP {response.status} {response.reason}"
        except TimeoutError:
            return None, f"no answer within {timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
