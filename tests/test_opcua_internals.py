"""Contract of drivers/opcua/asyncua_internals.py with the installed asyncua: these fail, never
skip, when asyncua moves an internal the driver's pre-encoded send uses (check them, then add the
version to ``WRITTEN_FOR``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from asyncua import ua
from asyncua.ua.ua_binary import struct_to_binary
from opcua_helpers import bridge_controller, plc_driver, simulated_plc

import drivers.opcua.asyncua_internals as internals
from drivers.opcua.driver import OpcUaDriver
from lightctl.model.values import ApplyResult, ChannelState


@pytest.fixture
async def driver() -> AsyncIterator[OpcUaDriver]:
    async with simulated_plc(bridge_controller()) as (_sim, ctrl), plc_driver(ctrl) as d:
        await d.connect()
        yield d


def test_installed_asyncua_is_a_version_the_internals_were_checked_against() -> None:
    assert internals.INSTALLED in internals.WRITTEN_FOR, (
        f"asyncua {internals.INSTALLED}: check drivers/opcua/asyncua_internals.py against it (this test file), "
        f"then add it to WRITTEN_FOR {internals.WRITTEN_FOR}"
    )


async def test_every_name_the_module_uses_is_there(driver: OpcUaDriver) -> None:
    client = driver._client
    assert client is not None
    protocol = client.uaclient.protocol
    assert internals.why_not(client, protocol) is None
    assert internals.usable(client) is protocol
    assert internals.ready_protocol(client) is protocol


async def test_pre_encoded_parameters_are_asyncuas_own_encoding(driver: OpcUaDriver) -> None:
    """type id + header + parameters encoded apart are byte for byte the request asyncua encodes."""
    assert driver.resolved is not None
    compiled = driver.compile({"deck": ChannelState(True, 42.0), "towers": ChannelState(False, 0.0)}, driver.resolved)
    assert compiled.encoded is not None
    header = ua.RequestHeader(RequestHandle=7, TimeoutHint=2000)
    whole = struct_to_binary(ua.WriteRequest(RequestHeader=header, Parameters=ua.WriteParameters(NodesToWrite=compiled.writes)))
    assert compiled.encoded.type_id + struct_to_binary(header) + compiled.encoded.parameters == whole


async def test_send_now_keeps_asyncuas_bookkeeping(driver: OpcUaDriver) -> None:
    """A request sent by send_now takes the next request id and handle as asyncua's own would, its
    response reaches the future registered for it, and asyncua's next request goes on from there."""
    client = driver._client
    assert client is not None and driver.resolved is not None
    protocol = client.uaclient.protocol
    encoded = driver.compile({"deck": ChannelState(True, 33.0)}, driver.resolved).encoded
    assert encoded is not None
    request_id, handle = protocol._request_id, protocol._request_handle
    sent = internals.send_now(protocol, encoded)
    assert (protocol._request_id, protocol._request_handle) == (request_id + 1, handle + 1)
    assert protocol._callbackmap[request_id + 1] is sent
    results = await internals.response(protocol, encoded, sent)
    assert [r.is_good() for r in results] == [True] * len(results)
    assert (await driver.read(["deck"])).channels["deck"].level == 33.0  # through asyncua's own Read
    assert protocol._request_id == request_id + 2 and protocol._request_handle == handle + 2


async def test_an_unchecked_asyncua_turns_the_fast_path_off_with_a_log_line(
    driver: OpcUaDriver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(internals, "INSTALLED", "9.9.9")
    with caplog.at_level(logging.WARNING, logger=internals.__name__):
        assert driver.prepare({"deck": ChannelState(True, 20.0)}) is None
        assert await driver.apply({"deck": ChannelState(True, 20.0)}) == ApplyResult(operations=1)  # asyncua's write
    assert [r.getMessage() for r in caplog.records].count(
        "the pre-encoded OPC UA send is off (asyncua 9.9.9, this module was written for 2.1.0): requests go through "
        "asyncua's own write/call, and a show's OPC UA cues through apply()"
    ) == 1
