"""A DALI batch made ready before a show's beat (``DaliDriver.prepare``) and fired at it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from drivers.dali.compile import LineOp
from drivers.dali.frames import Reply, Transaction
from drivers.dali.transport import HeldLineTransport
from lightctl.model.values import ApplyResult, ChannelId

if TYPE_CHECKING:
    from drivers.dali.driver import DaliDriver


class PreparedLines:
    """A batch compiled, with each line's first frame encoded: ``fire`` takes every line's
    command turn and transport turn without awaiting (all or none), writes the first frames, and
    the task it returns sends the rest of each line as ``apply`` does."""

    def __init__(
        self, driver: DaliDriver, transport: HeldLineTransport[Any], versions: tuple[int, ...],
        plans: dict[int, list[LineOp]], refused: dict[ChannelId, str], firsts: dict[int, Any],
    ) -> None:
        self.driver, self.transport, self.versions = driver, transport, versions
        self.plans, self.refused, self.firsts = plans, refused, firsts

    def fire(self) -> asyncio.Future[ApplyResult] | None:
        driver, transport = self.driver, self.transport
        if driver._versions() != self.versions:
            return None  # what the gear hold changed since: compiled anew by apply
        held: list[int] = []
        for number in self.firsts:
            arbiter = driver.arbiters[number]
            if not arbiter.try_command():
                break
            if not transport.try_hold(number):
                arbiter.end_command()
                break
            held.append(number)
        else:
            try:
                for number, request in self.firsts.items():
                    transport.write(number, request)
            except BaseException:  # against the transport's promise: some frames may be out
                for number in held:
                    transport.abandon(number)
                    driver.knowledge[number].forget()
                self.give_back(held)
                raise
            return _Fired(self).task
        self.give_back(held)
        return None

    def give_back(self, lines: Iterable[int]) -> None:
        for number in lines:
            self.transport.end_turn(number)
            self.driver.arbiters[number].end_command()


class _Fired:
    """One firing of a prepared batch: its lines are held until each is done. A line task that
    never ran (cancelled first) is given back by the done callback, its session abandoned, since
    the reply to its first frame was never read."""

    def __init__(self, prepared: PreparedLines) -> None:
        self.prepared = prepared
        self.held = set(prepared.firsts)
        self.task = asyncio.ensure_future(self._complete())
        self.task.add_done_callback(self._abandon_rest)

    async def _complete(self) -> ApplyResult:
        prepared = self.prepared
        results = await prepared.driver._run_lines(prepared.plans, self._line)
        return prepared.driver._result(prepared.plans, prepared.refused, results)

    async def _line(self, number: int, ops: list[LineOp]) -> int:
        transport = self.prepared.transport
        first: object = self.prepared.firsts[number]

        async def send(line: int, transaction: Transaction) -> Reply:
            nonlocal first
            request, first = first, None
            if request is not None:
                return await transport.complete(line, transaction, request)
            return await transport.send_held(line, transaction)

        try:
            return await self.prepared.driver._send_ops(number, ops, send)
        finally:
            self._give_back(number)

    def _give_back(self, number: int) -> None:
        if number in self.held:
            self.held.discard(number)
            self.prepared.give_back([number])

    def _abandon_rest(self, _: object) -> None:
        driver = self.prepared.driver
        for number in list(self.held):
            self.prepared.transport.abandon(number)
            driver.knowledge[number].forget()
            self._give_back(number)
