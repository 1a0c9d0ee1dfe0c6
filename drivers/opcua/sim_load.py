"""Many simulated PLCs in one process: what keeps them from standing in each other's way.

* Messages are processed one per pass of the event loop (drivers/simturns.py), so that the loop
  reads every PLC's socket (and stamps arrivals) between them.
* :func:`install_cheap_value_copies`: asyncua's server deep-copies every value it hands a
  monitored item (a quarter of a simulated PLC's CPU per Write); scalar values are copied shallowly.
* :func:`lift_process_session_cap`: asyncua counts activated sessions in a class attribute shared
  by every server of the process (``InternalSession._current_connections``) and refuses the
  1,001st with ``BadMaxConnectionsReached``; a real PLC counts its own. 500 simulated PLCs with the
  daemon's and the benchmark floor's sessions are past it.
"""

from __future__ import annotations

import copy
from typing import Any

from asyncua import ua
from asyncua.server import monitored_item_service
from asyncua.server.internal_session import InternalSession

_IMMUTABLE_SCALARS = (bool, int, float, str, bytes, type(None))


def copy_datavalue(value: ua.DataValue) -> ua.DataValue:
    """A copy the original's later changes cannot reach: for a scalar of an immutable type the two
    dataclasses are copied, anything else is deep-copied (what asyncua does for every value)."""
    variant = value.Value
    if variant is None or variant.is_array or not isinstance(variant.Value, _IMMUTABLE_SCALARS):
        return copy.deepcopy(value)
    out = copy.copy(value)
    out.Value = copy.copy(variant)
    return out


def _set_current_datavalue(self: Any, cur_val: ua.DataValue) -> None:
    self.old_dvalue = self.current_dvalue
    self.current_dvalue = copy_datavalue(cur_val)


def install_cheap_value_copies() -> None:
    """Replace ``MonitoredItemValues.set_current_datavalue`` (asyncua 2.1: keep the previous
    value, store a deep copy of the new one) by the same with :func:`copy_datavalue`. Only the
    simulators run an asyncua server in this project."""
    values: Any = monitored_item_service.MonitoredItemValues
    if getattr(values, "set_current_datavalue", None) is not _set_current_datavalue:
        values.set_current_datavalue = _set_current_datavalue


PROCESS_SESSION_CAP = 1_000_000


def lift_process_session_cap() -> None:
    """See the module's docstring; each simulated PLC still answers as its stack would."""
    InternalSession.max_connections = max(InternalSession.max_connections, PROCESS_SESSION_CAP)
