"""The frame-level interface both gateway transports implement: ``send(line, transaction) -> Reply``.

A transport owns the sockets to one gateway and serialises transactions per line (a DALI line has
one transaction on the wire at a time). It knows nothing of channels or levels. Failures are the
project's typed errors naming the controller and the line; after a failure the line's session is
dropped and the next ``send`` reconnects.
"""

from __future__ import annotations

import abc
import asyncio
from collections import Counter
from typing import Any, Generic, TypeVar

from drivers.base import Turn
from drivers.dali.frames import Reply, Transaction


class FrameTransport(abc.ABC):
    def __init__(self, controller_id: str, timeout_s: float) -> None:
        self.controller_id = controller_id
        self.timeout_s = timeout_s
        self.frames_sent: Counter[int] = Counter()
        """Forward frames put on each line (a send-twice command counts two)."""
        self.foreign_frames: Counter[int] = Counter()
        """Frames from another master seen on each line (daliserver status 2, WebSocket monitor)."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the sessions; raises ControllerUnreachable/ControllerTimeout and leaves none open."""

    @abc.abstractmethod
    def is_open(self) -> bool:
        """Every line's session is open (as far as this side knows)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Idempotent; never raises."""

    @abc.abstractmethod
    async def send(self, line: int, transaction: Transaction) -> Reply:
        """Put one transaction on ``line`` and return its reply (``NO_REPLY`` for commands)."""

    def where(self, line: int, transaction: Transaction | None = None) -> str:
        return f"line {line}" + (f" {transaction}" if transaction is not None else "")


RequestT = TypeVar("RequestT")


class HeldLineTransport(FrameTransport, Generic[RequestT]):
    """A transport that can put a line's first frame on the wire without awaiting (a show's beat).

    ``encode`` is done ahead of time; at the beat ``try_hold`` takes the line's turn without
    waiting and ``write`` puts the encoded frame on it. The holder then finishes that transaction
    with ``complete``, sends more with ``send_held``, and gives the line back with ``end_turn``;
    a holder that gives up with a frame still unanswered calls ``abandon`` first, so that a late
    reply is never taken for the next transaction's."""

    def __init__(self, controller_id: str, timeout_s: float) -> None:
        super().__init__(controller_id, timeout_s)
        self._line_turns: dict[int, Turn] = {}

    @abc.abstractmethod
    def encode(self, line: int, transaction: Transaction) -> RequestT:
        """The transaction's frame as ``write`` sends it; RequestRejected if it cannot go."""

    @abc.abstractmethod
    def try_hold(self, line: int) -> bool:
        """Take the line's turn now if its session is open and nobody holds or awaits the line;
        False, holding nothing, if not."""

    @abc.abstractmethod
    def write(self, line: int, request: RequestT) -> None:
        """Put an encoded frame on a held line now. It does not raise: a write that fails leaves
        its error for ``complete`` to raise."""

    async def send(self, line: int, transaction: Transaction) -> Reply:
        request = self.encode(line, transaction)
        async with self._line_lock(line):
            return await self._send_held(line, transaction, request)

    async def send_held(self, line: int, transaction: Transaction) -> Reply:
        """``send`` for the holder of the line's turn."""
        return await self._send_held(line, transaction, self.encode(line, transaction))

    async def complete(self, line: int, transaction: Transaction, request: RequestT) -> Reply:
        """Finish the transaction whose first frame ``write`` sent: as ``send`` from there."""
        return await self._transact(line, transaction, request, written=True)

    async def _send_held(self, line: int, transaction: Transaction, request: RequestT) -> Reply:
        await self._open_line(line)
        return await self._transact(line, transaction, request, written=False)

    def end_turn(self, line: int) -> None:
        """Give the line's turn back."""
        self._line_lock(line).release()

    def line_turn(self, line: int) -> Turn:
        """``try_hold``/``end_turn`` of one line as a :class:`drivers.base.Turn` (a show's beat)."""
        turn = self._line_turns.get(line)
        if turn is None:
            turn = self._line_turns[line] = _LineTurn(self, line)
        return turn

    @abc.abstractmethod
    def _line_lock(self, line: int) -> asyncio.Lock:
        """The lock that serialises the line's transactions (its turn)."""

    @abc.abstractmethod
    async def _open_line(self, line: int) -> None:
        """Open the line's session if it is not open."""

    @abc.abstractmethod
    async def _transact(self, line: int, transaction: Transaction, request: RequestT, *, written: bool) -> Reply:
        """One transaction on an open session whose turn the caller holds; ``written``: its
        first frame is already on the wire. Any failure, or the caller giving up, ends the
        session."""

    @abc.abstractmethod
    def abandon(self, line: int) -> None:
        """Drop the line's session now (a frame is unanswered): the next send reconnects."""


class _LineTurn:
    __slots__ = ("line", "transport")

    def __init__(self, transport: HeldLineTransport[Any], line: int) -> None:
        self.transport, self.line = transport, line

    def try_take(self) -> bool:
        return self.transport.try_hold(self.line)

    def give_back(self) -> None:
        self.transport.end_turn(self.line)
