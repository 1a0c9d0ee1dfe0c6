"""Contract of drivers/modbus/pymodbus_internals.py with the installed pymodbus: these fail, never
skip, when pymodbus moves what the simulator's server relies on (check it, then add the version
to ``WRITTEN_FOR``)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest
from pymodbus.pdu.register_message import ReadInputRegistersResponse
from pymodbus.server.requesthandler import ServerRequestHandler

import drivers.modbus.pymodbus_internals as internals
from drivers.modbus import PLUGIN, ModbusDriver
from drivers.modbus.settings import ModbusSettings
from drivers.modbus.sim import ModbusSimulator
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelState
from tests.test_modbus_driver import controller


@pytest.fixture
async def cabinet() -> AsyncIterator[tuple[ModbusSimulator, ModbusDriver, ControllerConfig]]:
    ctrl = controller()
    sim = PLUGIN.create_simulator([ctrl], any_port=True)
    assert isinstance(sim, ModbusSimulator)
    await sim.start()
    driver = ModbusDriver(ctrl.model_copy(update={"settings": ModbusSettings(unit=1, **sim.endpoints()[ctrl.id])}))
    try:
        yield sim, driver, ctrl
    finally:
        await driver.close()
        await sim.stop()


def test_installed_pymodbus_is_a_version_the_internals_were_checked_against() -> None:
    assert internals.INSTALLED in internals.WRITTEN_FOR, (
        f"pymodbus {internals.INSTALLED}: check drivers/modbus/pymodbus_internals.py against it (this test file), "
        f"then add it to WRITTEN_FOR {internals.WRITTEN_FOR}"
    )


def test_the_fc04_reply_is_pymodbus_own_encoding() -> None:
    registers = [0, 1, 0x7FFF, 0xFFFF, 231, 4000]
    ours = internals.InputRegistersReply(registers=registers, dev_id=1, transaction_id=9).encode()
    assert ours == ReadInputRegistersResponse(registers=registers, dev_id=1, transaction_id=9).encode()


async def test_the_server_hooks_serve_requests(cabinet, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our socket served, arrivals noted by the connection's reader before pymodbus sees the bytes,
    FC04 answered by our reply class, each request run by our handle_later."""
    sim, driver, ctrl = cabinet
    replies, handled = [], []
    real_encode, real_handle = internals.InputRegistersReply.encode, ServerRequestHandler.handle_request

    def encode(self: internals.InputRegistersReply) -> bytes:
        replies.append(len(self.registers))
        return real_encode(self)

    async def handle_request(self: ServerRequestHandler) -> None:
        handled.append(type(self).__name__)
        await real_handle(self)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(internals.InputRegistersReply, "encode", encode)
    monkeypatch.setattr(ServerRequestHandler, "handle_request", handle_request)
    before = time.monotonic()
    await driver.apply({"c1": ChannelState(True, 40.0)})
    reading = await driver.read(["c1"])
    assert reading.channels["c1"].level == pytest.approx(40.0, abs=0.1)
    assert replies == [driver.status_request().count]
    assert set(handled) == {"_RequestHandler"} and len(handled) == sim.request_count(ctrl.id) == 3
    assert [t for t in sim.write_times(ctrl.id) if t >= before]  # the writes' arrivals


async def test_an_unchecked_pymodbus_turns_the_fast_paths_off_with_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(internals, "INSTALLED", "0.0.1")
    monkeypatch.setattr(internals, "_reported", [])
    ctrl = controller()
    sim = ModbusSimulator([ctrl], any_port=True)
    with caplog.at_level(logging.WARNING, logger=internals.__name__):
        await sim.start()
    driver = ModbusDriver(ctrl.model_copy(update={"settings": ModbusSettings(unit=1, **sim.endpoints()[ctrl.id])}))
    try:
        await driver.apply({"c2": ChannelState(True, 60.0)})  # served the way pymodbus serves
        assert (await driver.read(["c2"])).channels["c2"].level == pytest.approx(60.0, abs=0.1)
    finally:
        await driver.close()
        await sim.stop()
    assert [r.getMessage() for r in caplog.records] == [
        "pymodbus 0.0.1: the Modbus simulator's fast paths are off (written for 3.16.1): requests are handled "
        "and FC04 replies packed as pymodbus does"
    ]
