"""Sending a batch's compiled line ops: every line at once, each with its command turn held,
what the gear learned from each op kept, and the batch's result made from its lines'.

Both ``DaliDriver.apply`` and a show's fired batch (drivers/dali/prepared.py) send through this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from drivers.base import DriverError
from drivers.dali.arbiter import LineArbiter
from drivers.dali.compile import LineKnowledge, LineOp, learn
from drivers.dali.frames import Reply, Transaction
from drivers.dali.transport import FrameTransport
from lightctl.model.values import ApplyResult, ChannelId

Send = Callable[[int, Transaction], Awaitable[Reply]]
RunLine = Callable[[int, list[LineOp]], Awaitable[int]]


class LineSender:
    def __init__(
        self, transport: FrameTransport, arbiters: Mapping[int, LineArbiter], knowledge: Mapping[int, LineKnowledge]
    ) -> None:
        self.transport = transport
        self.arbiters = arbiters
        self.knowledge = knowledge

    def versions(self) -> tuple[int, ...]:
        """What the driver knows of every line's gear, as versions: a compiled batch holds while they do."""
        return tuple(know.version for know in self.knowledge.values())

    async def apply(self, plans: Mapping[int, list[LineOp]], refused: Mapping[ChannelId, str]) -> ApplyResult:
        return self.result(plans, refused, await self.run_lines(plans, self.run_line))

    async def run_line(self, number: int, ops: list[LineOp]) -> int:
        async with self.arbiters[number].command():
            return await self.send_ops(number, ops, self.transport.send)

    async def run_lines(self, plans: Mapping[int, list[LineOp]], run: RunLine) -> list[int | BaseException]:
        """Every line at once with ``run``: the first by this task itself, the others in their own
        tasks (a show's beat writes every line's first frame at ``fire``, before any of this).
        Per line: the frames sent, or the error."""
        if not plans:
            return []
        (first, first_ops), *rest = plans.items()
        others = [asyncio.ensure_future(run(n, ops)) for n, ops in rest]
        try:
            try:
                sent: int | BaseException = await run(first, first_ops)
            except DriverError as exc:
                sent = exc
            return [sent, *await asyncio.gather(*others, return_exceptions=True)]
        except BaseException:
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            raise

    async def send_ops(self, number: int, ops: list[LineOp], send: Send) -> int:
        """Send a line's ops with its command turn held; returns the frames put on the bus (the
        sweep's are not counted). What the gear hold is learned per op, and forgotten on failure."""
        know = self.knowledge[number]
        sent = 0
        try:
            for op in ops:
                for transaction in op.transactions:
                    await send(number, transaction)
                    sent += 2 if transaction.send_twice else 1
                learn(op, know)
        except BaseException:
            know.forget()
            raise
        return sent

    @staticmethod
    def result(
        plans: Mapping[int, list[LineOp]], refused: Mapping[ChannelId, str], results: list[int | BaseException]
    ) -> ApplyResult:
        """The batch's result from its lines': all failed raises, some failed rejects their channels."""
        rejected = dict(refused)
        failures = [(n, r) for n, r in zip(plans, results, strict=True) if isinstance(r, BaseException)]
        sent = sum(r for r in results if isinstance(r, int))
        for _, result in failures:
            if not isinstance(result, DriverError):
                raise result
        if failures and len(failures) == len(plans):
            raise failures[0][1]
        for number, error in failures:
            for channel_id in {ch for op in plans[number] for ch in op.channels}:
                rejected[channel_id] = f"line {number}: {error.__class__.__name__}: {getattr(error, 'detail', error)}"
        return ApplyResult(sent, rejected)
