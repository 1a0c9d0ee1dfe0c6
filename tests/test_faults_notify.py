"""Webhooks: a signed JSON POST per alarm, retried with backoff against a server that fails twice,
every attempt recorded; a notification owed when the daemon stops is delivered after it restarts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from conftest import free_port, installation_data, modbus_controller
from test_faults_modbus import start, wait_for

from drivers.base import Fault
from lightctl.services.faults import notify
from lightctl.store import Store

SECRET = "s3cret-for-the-duty-webhook"


class Receiver:
    """A local HTTP server that answers 500 to the first ``fail`` requests, then 200."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.received: list[tuple[int, dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = 500 if self.fail > 0 else 200
        self.fail -= 1
        self.received.append((status, dict(request.headers), body))
        return web.Response(status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def data(port: int) -> dict[str, Any]:
    out = installation_data([modbus_controller(f"n{i}", i, channels=2, poll_s=0.5) for i in range(2)], per_site=2)
    out["faults"] = {
        "clear_holdoff_s": 1.0,
        "crews": [{"id": "crew-1", "name": "一班", "districts": ["d1"]}],
        "webhooks": [{"id": "duty", "url": f"http://127.0.0.1:{port}/hook", "secret": SECRET, "crews": ["crew-1"],
                      "events": ["fault"]}],
        "delivery": {"first_retry_s": 0.2, "max_retry_s": 0.5, "timeout_s": 2.0},
    }
    return out


async def test_a_webhook_retried_until_delivered_and_one_owed_across_a_restart(make_farm: Any, tmp_path: Path) -> None:
    receiver = Receiver(fail=2)
    await receiver.start()
    farm, config = await make_farm(data(receiver.port))
    daemon, faults = await start(config, tmp_path / "n.db")
    try:
        await farm.inject("n0", Fault("door_open"))
        await wait_for(lambda: any(status == 200 for status, _, _ in receiver.received), 15.0, "a delivery")
        assert [status for status, _, _ in receiver.received] == [500, 500, 200]
        ids = {headers[notify.DELIVERY_HEADER] for _, headers, _ in receiver.received}
        assert len(ids) == 1  # the same delivery, tried three times
        _, headers, body = receiver.received[-1]
        assert notify.verify(SECRET.encode(), int(headers[notify.TIMESTAMP_HEADER]), body, headers[notify.SIGNATURE_HEADER])
        message = json.loads(body)
        assert message["event"] == "fault.opened" and headers[notify.EVENT_HEADER] == "fault.opened"
        assert message["fault"]["kind"] == "door_open" and message["fault"]["location"]["controller"]["id"] == "n0"
        assert message["crews"] == ["crew-1"]
        (row,) = await daemon.store.outbox.rows()
        assert row["state"] == "delivered" and row["attempts"] == 3
        attempts = await daemon.store.outbox.attempts(int(row["id"]))
        assert [a.status for a in attempts] == [500, 500, 200] and attempts[0].error == "HTTP 500 Internal Server Error"
    finally:
        await daemon.stop()

    # Down: the next alarm's notification waits in the outbox through a restart.
    await receiver.stop()
    daemon, faults = await start(config, tmp_path / "n.db")
    try:
        await farm.inject("n1", Fault("door_open"))
        await wait_for(lambda: any(r.controller_id == "n1" for r in faults.service.tracker.by_id.values()), 10.0, "n1's fault")
        await faults.service.flush(faults.service.tracker.by_id[max(faults.service.tracker.by_id)].opened_at)
        await wait_for(lambda: faults.notifier.failed_attempts >= 1, 10.0, "a failed attempt")
    finally:
        await daemon.stop()
    pending = await _outbox_states(config, tmp_path / "n.db")
    assert pending.get("pending") == 1, pending

    receiver = Receiver(fail=0)
    receiver.port = int(config.faults.webhooks[0].url.split(":")[2].split("/")[0])
    await receiver.start()
    daemon, faults = await start(config, tmp_path / "n.db")
    try:
        await wait_for(lambda: receiver.received, 15.0, "the owed delivery after the restart")
        message = json.loads(receiver.received[0][2])
        assert message["fault"]["location"]["controller"]["id"] == "n1" and receiver.received[0][0] == 200
        await wait_for(lambda: faults.notifier.delivered == 1, 5.0, "the delivery recorded")
        # the n0 door was still open across the restarts: one fault, never opened (nor told) twice
        assert len([m for _, _, b in receiver.received if (m := json.loads(b))["fault"]["location"]["controller"]["id"] == "n0"]) == 0
    finally:
        await daemon.stop()
        await receiver.stop()


async def _outbox_states(config: Any, path: Path) -> dict[str, int]:
    store = Store(path)
    await asyncio.to_thread(store.open)
    try:
        return await store.outbox.summary()
    finally:
        await asyncio.to_thread(store.close)
