"""A DALI batch made ready before a show's beat (``DaliDriver.prepare``) and fired at it."""

from __future__ import annotations

import asyncio
from typing import Any

from drivers.base import HeldTurns, Turn, fire_with_turns
from drivers.dali.compile import LineOp
from drivers.dali.frames import Reply, Transaction
from drivers.dali.lines import LineSender
from drivers.dali.transport import HeldLineTransport
from lightctl.model.values import ApplyResult, ChannelId


class PreparedLines:
    """A batch compiled, with each line's first frame encoded: ``fire`` takes every line's
    command turn and transport turn without awaiting (all or none, ``drivers.base.fire_with_turns``),
    writes the first frames, and the task it returns sends the rest of each line as ``apply``
    does, giving each line back as soon as its frames are done."""

    def __init__(
        self, sender: LineSender, transport: HeldLineTransport[Any], versions: tuple[int, ...],
        plans: dict[int, list[LineOp]], refused: dict[ChannelId, str], firsts: dict[int, Any],
    ) -> None:
        self.sender, self.transport, self.versions = sender, transport, versions
        self.plans, self.refused, self.firsts = plans, refused, firsts
        self.turns: dict[int, tuple[Turn, Turn]] = {
            n: (sender.arbiters[n].command_turn, transport.line_turn(n)) for n in firsts
        }

    def fire(self) -> asyncio.Future[ApplyResult] | None:
        if self.sender.versions() != self.versions:
            return None  # what the gear hold changed since: compiled anew by apply
        turns = [turn for pair in self.turns.values() for turn in pair]
        return fire_with_turns(turns, self._send_first, self._complete, self._abandon)

    def _send_first(self) -> set[int]:
        """Every line's first frame on the wire; returns the lines whose frames are not done yet."""
        try:
            for number, request in self.firsts.items():
                self.transport.write(number, request)
        except BaseException:  # against the transport's promise: some frames may be out
            self._abandon(set(self.firsts))
            raise
        return set(self.firsts)

    async def _complete(self, pending: set[int], held: HeldTurns) -> ApplyResult:
        async def line(number: int, ops: list[LineOp]) -> int:
            first: object = self.firsts[number]

            async def send(line: int, transaction: Transaction) -> Reply:
                nonlocal first
                request, first = first, None
                if request is not None:
                    return await self.transport.complete(line, transaction, request)
                return await self.transport.send_held(line, transaction)

            try:
                return await self.sender.send_ops(number, ops, send)
            finally:
                pending.discard(number)
                for turn in reversed(self.turns[number]):
                    held.give_back(turn)

        results = await self.sender.run_lines(self.plans, line)
        return self.sender.result(self.plans, self.refused, results)

    def _abandon(self, pending: set[int]) -> None:
        """Lines whose first frame's reply was never read (the task cancelled before they ran):
        their sessions go, and what the driver knew of their gear."""
        for number in pending:
            self.transport.abandon(number)
            self.sender.knowledge[number].forget()
        pending.clear()
