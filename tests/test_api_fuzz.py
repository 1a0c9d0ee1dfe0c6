"""The whole API fuzzed from its OpenAPI document with schemathesis (issue 18): no 5xx, every
status documented, every response matching its schema. The daemon, its API and simulators run in a
thread of their own (schemathesis calls synchronously). Examples per operation: FUZZ_EXAMPLES
(default 50 in the suite; ``FUZZ_EXAMPLES=300 pytest tests/test_api_fuzz.py`` for the long form)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import build_config, installation_data, modbus_controller
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from lightctl.runtime.credentials import new_local_credential
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.wiring import attach_services
from lightctl.simulation.farm import SimulatorFarm
from web import app as web_app
from web.app import bound_port, serve
from web.routing import openapi_document

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))


def fuzz_data() -> dict[str, Any]:
    data = installation_data([modbus_controller(f"f{i}", i, channels=3) for i in range(4)], per_site=2)
    data["shows"] = [{"id": "pulse", "duration_s": 0.4, "cues": [{"at_s": 0, "rules": [{"target": "*", "level": 60}]}]}]
    return data


class Served:
    """A daemon with its API and simulators, on an event loop in a thread."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.ready = threading.Event()
        self.url = ""
        self.token = ""
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="fuzzed-daemon", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        data = fuzz_data()
        config = build_config(data)
        farm = SimulatorFarm(data, config, processes=1, any_port=True)
        endpoints = await farm.start()
        daemon = attach_services(Daemon(config.with_controller_settings(endpoints), database=self.database))
        self.token = new_local_credential()
        await daemon.start()
        runner = await serve(daemon, "127.0.0.1", 0, local_credential=self.token)
        self.url = f"http://127.0.0.1:{bound_port(runner)}"
        self.ready.set()
        try:
            await self.stop_event.wait()
        finally:
            await runner.cleanup()
            await daemon.stop()
            await farm.stop()

    def stop(self) -> None:
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=60)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("fuzz") / "fuzz.db")
    server.thread.start()
    assert server.ready.wait(60), "the daemon did not start"
    if server.error is not None:
        raise server.error
    yield server
    server.stop()


SCHEMA = schemathesis.openapi.from_dict(
    openapi_document(route for module in web_app.ROUTE_MODULES for route in module.ROUTES)
).exclude(path="/api/v1/ws")  # a WebSocket upgrade, not an HTTP exchange (its refusal is tested elsewhere)


CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
    response_headers_conformance, unsupported_method,
]
"""What the issue asks: no 5xx, every answer documented and within its schema (a schema-valid request
that names what does not exist, or a selector that resolves to nothing, is rightly refused)."""


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_schema(case: schemathesis.Case, served: Served) -> None:
    case.call_and_validate(
        base_url=served.url, headers={"Authorization": f"Bearer {served.token}"}, timeout=30, checks=CHECKS
    )
