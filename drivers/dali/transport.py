"""The frame-level interface both gateway transports implement: ``send(line, transaction) -> Reply``.

A transport owns the sockets to one gateway and serialises transactions per line (a DALI line has
one transaction on the wire at a time). It knows nothing of channels or levels. Failures are the
project's typed errors naming the controller and the line; after a failure the line's session is
dropped and the next ``send`` reconnects.
"""

from __future__ import annotations

import abc
from collections import Counter

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
