"""The MBAP link against misbehaving devices: stray and late frames, bad replies, lost connections."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from drivers.base import ControllerTimeout, ControllerUnreachable, ProtocolFault
from drivers.modbus.protocol import read_input_registers, write_coils
from drivers.modbus.transport import ModbusTcpLink

Reply = Callable[[int, int, bytes], bytes | None]
"""(transaction id, unit, request pdu) -> bytes to send back (None: stay silent, CLOSE: hang up)."""
CLOSE = b""


class Device:
    """A loopback TCP device that answers each MBAP request with whatever ``reply`` returns."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self.handlers: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        try:
            while True:
                tid, _, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                pdu = await reader.readexactly(length - 1)
                out = self.reply(tid, unit, pdu)
                if out == CLOSE:
                    break
                if out:
                    writer.write(out)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.writers.discard(writer)
            self.handlers.discard(task)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()
        await asyncio.gather(*list(self.handlers), return_exceptions=True)


def frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def registers(values: list[int]) -> bytes:
    return bytes([4, 2 * len(values)]) + struct.pack(f">{len(values)}H", *values)


Make = Callable[..., Awaitable[tuple[Device, ModbusTcpLink]]]


@pytest.fixture
async def device() -> AsyncIterator[Make]:
    made: list[tuple[Device, ModbusTcpLink]] = []

    async def make(reply: Reply, timeout_s: float = 0.3) -> tuple[Device, ModbusTcpLink]:
        dev = Device(reply)
        await dev.start()
        link = ModbusTcpLink("cab-x", "127.0.0.1", dev.port, 1, timeout_s)
        made.append((dev, link))
        return dev, link

    yield make
    for dev, link in made:
        link.close()
        await dev.stop()


READ = read_input_registers(0, 3)


async def test_stray_frames_before_the_reply_are_dropped(device: Make) -> None:
    def reply(tid: int, unit: int, pdu: bytes) -> bytes:
        # a late answer to an abandoned transaction, then the real one, split oddly
        return frame(tid + 100, unit, registers([9, 9, 9])) + frame(tid, unit, registers([1, 2, 3]))

    _, link = await device(reply)
    assert list((await link.execute(READ)).registers) == [1, 2, 3]
    assert list((await link.execute(READ)).registers) == [1, 2, 3]


async def test_wrong_unit_is_a_protocol_fault(device: Make) -> None:
    _, link = await device(lambda tid, unit, pdu: frame(tid, 9, registers([1, 2, 3])))
    with pytest.raises(ProtocolFault, match="from unit 9, not 1"):
        await link.execute(READ)
    assert not link.connected


async def test_short_register_reply_is_a_protocol_fault(device: Make) -> None:
    _, link = await device(lambda tid, unit, pdu: frame(tid, unit, registers([1, 2])))
    with pytest.raises(ProtocolFault, match="2 registers in reply, expected 3"):
        await link.execute(READ)


async def test_byte_count_mismatch_is_a_protocol_fault(device: Make) -> None:
    _, link = await device(lambda tid, unit, pdu: frame(tid, unit, bytes([4, 8, 0, 1, 0, 2, 0, 3])))
    with pytest.raises(ProtocolFault, match="byte count 8 in a reply of 8 bytes"):
        await link.execute(READ)


async def test_write_echo_must_match(device: Make) -> None:
    _, link = await device(lambda tid, unit, pdu: frame(tid, unit, struct.pack(">BHH", 15, 0, 7)))
    with pytest.raises(ProtocolFault, match="reply echoes 0\\+7"):
        await link.execute(write_coils(0, [True] * 8, ("c1",)))


async def test_wrong_function_code_is_a_protocol_fault(device: Make) -> None:
    _, link = await device(lambda tid, unit, pdu: frame(tid, unit, struct.pack(">BHH", 16, 0, 3)))
    with pytest.raises(ProtocolFault, match="reply FC16 to read_input_registers"):
        await link.execute(READ)


async def test_malformed_header_drops_the_connection(device: Make) -> None:
    """Garbage from the device is a protocol fault (it answered, wrongly), not a lost link."""
    _, link = await device(lambda tid, unit, pdu: struct.pack(">HHHB", tid, 7, 5, unit) + b"\x04\x02\x00\x01")
    with pytest.raises(ProtocolFault, match="malformed MBAP header"):
        await link.execute(READ)
    assert not link.connected


async def test_silence_is_a_timeout_and_the_next_call_reconnects(device: Make) -> None:
    answers = iter([None, registers([4, 5, 6])])

    def reply(tid: int, unit: int, pdu: bytes) -> bytes | None:
        out = next(answers)
        return None if out is None else frame(tid, unit, out)

    dev, link = await device(reply)
    with pytest.raises(ControllerTimeout, match=r"cab-x: no reply to read_input_registers \(FC04\) at 0..2 within 0.3 s"):
        await link.execute(READ)
    assert list((await link.execute(READ)).registers) == [4, 5, 6]
    assert dev.connections == 2


async def test_a_connection_the_device_dropped_is_replaced_once(device: Make) -> None:
    calls = []

    def reply(tid: int, unit: int, pdu: bytes) -> bytes:
        calls.append(tid)
        return CLOSE if len(calls) == 2 else frame(tid, unit, registers([7, 7, 7]))

    dev, link = await device(reply)
    await link.execute(READ)
    # the device hangs up on the second request (a reboot, an idle timeout): sent again, once
    assert list((await link.execute(READ)).registers) == [7, 7, 7]
    assert dev.connections == 2 and len(calls) == 3


async def test_a_fresh_connection_that_drops_is_unreachable(device: Make) -> None:
    dev, link = await device(lambda tid, unit, pdu: CLOSE)
    with pytest.raises(ControllerUnreachable, match="connection closed by the device"):
        await link.execute(READ)
    assert dev.connections == 1


async def test_a_cancelled_request_leaves_a_clean_link(device: Make) -> None:
    answers = iter([None, registers([1, 2, 3])])

    def reply(tid: int, unit: int, pdu: bytes) -> bytes | None:
        out = next(answers)
        return None if out is None else frame(tid, unit, out)

    dev, link = await device(reply, timeout_s=5.0)
    task = asyncio.create_task(link.execute(READ))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not link.connected
    assert list((await link.execute(READ)).registers) == [1, 2, 3]
    assert dev.connections == 2
