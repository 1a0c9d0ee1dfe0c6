"""Memoised decoding of the BACnet requests and acks that a switch repeats.

A one-switch round sends every building the same ReadPropertyMultiple and the same
WritePropertyMultiple bytes as last time, and the buildings' read-back acks repeat too (outputs
hold scene levels). bacpypes3 decodes each one from scratch into its data classes, which is most
of the CPU a request costs on either side (py-spy over 300 buildings). Decoding is a function of
the bytes, so ``APCISequence.decode`` is memoised for those three kinds of PDU: the first decode
of given bytes is bacpypes3's own, later ones are a shallow copy of it with the header fields
(source, invoke id) of the PDU at hand.

The copies share their nested values with the memo, so they must be read, never changed in place:
that holds for bacpypes3's service handlers and for ours (they build replies, they do not edit
requests). Every other kind of PDU is decoded as before.
"""

from __future__ import annotations

import copy
from typing import Any

from bacpypes3.apdu import APCISequence, ComplexAckPDU, ConfirmedRequestPDU, ConfirmedServiceChoice

MEMOISED = frozenset(
    {
        (ConfirmedRequestPDU.pduType, ConfirmedServiceChoice.readPropertyMultiple),
        (ConfirmedRequestPDU.pduType, ConfirmedServiceChoice.writePropertyMultiple),
        (ComplexAckPDU.pduType, ConfirmedServiceChoice.readPropertyMultiple),
    }
)
MEMO_SIZE = 1024
"""Distinct PDUs kept (each at most one APDU of 1,476 octets, and its decoded form: some kB of
bacpypes3 objects); the memo starts over when full."""

_memo: dict[tuple[int, int, bytes], APCISequence] = {}
_decode: Any = None
"""bacpypes3's own ``APCISequence.decode`` (the underlying function of the classmethod)."""


def memo_decode(cls: type[APCISequence], apdu: Any) -> APCISequence:
    kind = (apdu.apduType, apdu.apduService)
    if kind not in MEMOISED:
        result: APCISequence = _decode(cls, apdu)
        return result
    key = (*kind, bytes(apdu.pduData))
    template = _memo.get(key)
    if template is None:
        template = _decode(cls, apdu)
        if len(_memo) >= MEMO_SIZE:
            _memo.clear()
        _memo[key] = template
    decoded = copy.copy(template)
    decoded.update(apdu)
    return decoded


def install() -> None:
    """Memoise ``APCISequence.decode`` (idempotent)."""
    global _decode
    if _decode is None:
        _decode = APCISequence.__dict__["decode"].__func__
        APCISequence.decode = classmethod(memo_decode)  # type: ignore[assignment,method-assign]


def memo_size() -> int:
    return len(_memo)
