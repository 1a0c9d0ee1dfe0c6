"""The contract of lightctl/federation/aiomqtt_internals.py with aiomqtt: fails, never skips, when
aiomqtt moves what it relies on."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Callable
from typing import Any

import aiomqtt
import pytest
import uvloop

from lightctl.federation import aiomqtt_internals


def test_written_for_the_installed_aiomqtt() -> None:
    assert aiomqtt_internals.INSTALLED in aiomqtt_internals.WRITTEN_FOR, (
        f"aiomqtt {aiomqtt_internals.INSTALLED}: check Client._on_socket_register_write and update WRITTEN_FOR"
    )
    source = inspect.getsource(aiomqtt.Client._on_socket_register_write)
    assert "call_soon_threadsafe(self._loop.add_writer, sock.fileno(), callback)" in source
    assert "client.loop_write()" in source and "self._disconnected.set_exception(exc)" in source


@pytest.mark.parametrize("make_loop", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_a_socket_closed_before_its_writer_is_added_is_skipped_quietly(make_loop: Callable[[], asyncio.AbstractEventLoop]) -> None:
    loop = make_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))

    async def scenario() -> None:
        client = aiomqtt.Client("127.0.0.1", 1)
        paho = client._client
        assert paho.on_socket_register_write == client._on_socket_register_write  # what is replaced
        assert aiomqtt_internals.guard_write_registration(client)
        assert paho.on_socket_register_write != client._on_socket_register_write
        writes: list[int] = []
        paho.loop_write = lambda: writes.append(1)  # type: ignore[method-assign]  # paho is not connected here
        kept, closed = socket.socketpair()
        try:
            paho.on_socket_register_write(paho, None, kept)
            gone, _other = socket.socketpair()
            paho.on_socket_register_write(paho, None, gone)
            gone.close()  # the broker went away before the loop got to it
            _other.close()
            await asyncio.sleep(0.05)
            assert writes  # a live socket's writer is registered as before: paho writes when it is writable
            loop.remove_writer(kept.fileno())
        finally:
            kept.close()
            closed.close()

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert errors == []
