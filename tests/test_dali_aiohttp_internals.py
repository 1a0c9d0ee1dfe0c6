"""Contract of drivers/dali/aiohttp_internals.py with the installed aiohttp: these fail, never
skip, when aiohttp moves what the DALI WebSocket transport's fire relies on (check it, then add
the version to ``WRITTEN_FOR``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import drivers.dali.aiohttp_internals as internals


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, asyncio.Queue[str]]]:
    received: asyncio.Queue[str] = asyncio.Queue()

    async def serve(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            received.put_nowait(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", serve)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"ws://{host}:{port}/ws", received
    finally:
        await runner.cleanup()


def _recording_writes(ws: aiohttp.ClientWebSocketResponse) -> list[bytes]:
    transport: Any = ws._writer.transport
    written: list[bytes] = []
    real = transport.write

    def write(data: bytes) -> None:
        written.append(bytes(data))
        real(data)

    transport.write = write
    return written


def _one_masked_frame(written: list[bytes], payload: str) -> bool:
    """A client's frame is masked: 2 header bytes, 4 of mask, the payload (short ones)."""
    data = b"".join(written)
    return len(data) == 6 + len(payload) and data[0] == 0x81 and data[1] == 0x80 | len(payload)


def test_installed_aiohttp_is_a_version_the_internal_was_checked_against() -> None:
    assert internals.INSTALLED in internals.WRITTEN_FOR, (
        f"aiohttp {internals.INSTALLED}: check drivers/dali/aiohttp_internals.py against it (this test file), "
        f"then add it to WRITTEN_FOR {internals.WRITTEN_FOR}"
    )


async def test_send_str_writes_in_its_first_step(server: tuple[str, asyncio.Queue[str]]) -> None:
    url, received = server
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        assert internals.why_not(ws) is None
        written = _recording_writes(ws)
        internals.send_now(ws, '{"type":"daliFrame"}')
        assert _one_masked_frame(written, '{"type":"daliFrame"}')  # written before any await
        assert await asyncio.wait_for(received.get(), 2.0) == '{"type":"daliFrame"}'


async def test_a_full_buffer_is_waited_for_only_after_the_write(server: tuple[str, asyncio.Queue[str]]) -> None:
    """The one place aiohttp's send awaits for an uncompressed frame is the drain after the write:
    stepping it once has written the frame even when the transport says it is full."""
    url, received = server
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        writer: Any = ws._writer
        written = _recording_writes(ws)
        writer._limit = 0
        writer.protocol._paused = True  # as after pause_writing(): a drain would wait
        try:
            internals.send_now(ws, "full")
        finally:
            writer.protocol._paused = False
        assert _one_masked_frame(written, "full")
        assert await asyncio.wait_for(received.get(), 2.0) == "full"


async def test_a_compressed_socket_or_an_unchecked_aiohttp_turns_it_off_with_a_log_line(
    server: tuple[str, asyncio.Queue[str]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = server
    with caplog.at_level(logging.WARNING, logger=internals.__name__):
        async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=15) as ws:
            assert ws.compress  # the test server agreed to permessage-deflate
            assert "compressed" in (internals.why_not(ws) or "")
            monkeypatch.setattr(internals, "INSTALLED", "0.0.1")
            assert internals.why_not(ws) == f"aiohttp 0.0.1, this module was written for {', '.join(internals.WRITTEN_FOR)}"
            assert internals.why_not(ws) is not None
    messages = [r.getMessage() for r in caplog.records]
    assert sum("aiohttp 0.0.1" in m for m in messages) == 1  # once per reason
    assert any(m.startswith("DALI WebSocket frames are not sent at a show's beat") for m in messages)
