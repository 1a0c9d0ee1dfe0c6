"""Hand-back: channels the centre stops commanding, so that their owner's own control runs them.

The CBD towers' facades belong to their owners; the centre commands them in its hours and hands
them back otherwise (BACnet: it writes NULL at its priority, and the building's schedule or the
relinquish default takes over). In the desired state a handed-back channel is :data:`RELEASED`
(lightctl.model.desired) instead of a :class:`ChannelState`; it comes from a scene rule with ``handback: true`` (the
built-in scene ``handback`` is one on ``*``), in whichever layer that scene is used: the schedule's
default scene, an entry, or an operator's override. Higher layers win as for any other state, and
the centre takes a channel back with any later scene on it.

Only drivers whose devices have an owner to hand back to can (their plugin's ``release``
capability, copied onto each controller by the config loader): a hand-back
that reaches any other channel is refused, by the config check and by the daemon, naming the
controllers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lightctl.inventory.index import Inventory
from lightctl.model.desired import ChannelKey


def cannot_release(inventory: Inventory, keys: Iterable[ChannelKey]) -> dict[str, str]:
    """Controllers (id -> protocol) among ``keys`` whose channels cannot be handed back (their
    driver has no owner to hand them to: ``ControllerConfig.releases``)."""
    out: dict[str, str] = {}
    for controller_id in sorted({key[0] for key in keys}):
        controller = inventory.controllers[controller_id].controller
        if not controller.releases:
            out[controller_id] = controller.protocol
    return out


def refusal(what: str, refused: Mapping[str, str], limit: int = 6) -> str:
    """``what`` names the hand-back (a selector, a rule, an entry)."""
    names = [f"{cid} ({protocol})" for cid, protocol in sorted(refused.items())]
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    leave_out = ", ".join(f"!protocol:{protocol}" for protocol in sorted(set(refused.values())))
    return (
        f"{what} cannot be handed back: it reaches {len(names)} controller(s) with no owner to hand "
        f"control back to: {shown}; only BACnet buildings can be (narrow the selector, e.g. add "
        f"'{leave_out}')"
    )
