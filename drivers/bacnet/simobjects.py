"""Local BACnet object classes the simulator needs beyond what bacpypes3 gives.

bacpypes3 0.0.110 has Lighting Output only as a definition and a Multi-state Value without a
priority array; a real building controller commands both through a 16-level priority array, so
these classes add bacpypes3's own ``Commandable`` behaviour to them. Range checks are the
simulator's (sim_device.SimBuilding.write), made before anything is stored.
"""

from __future__ import annotations

from typing import Any

from bacpypes3.basetypes import OptionalUnsigned
from bacpypes3.local.analog import AnalogInputObject as _AnalogInputObject
from bacpypes3.local.analog import AnalogOutputObject as _AnalogOutputObject
from bacpypes3.local.binary import BinaryOutputObject as _BinaryOutputObject
from bacpypes3.local.cmd import Commandable
from bacpypes3.local.cov import COVIncrementCriteria, GenericCriteria
from bacpypes3.local.object import Object as LocalObject
from bacpypes3.object import AccumulatorObject as _AccumulatorObject
from bacpypes3.object import LightingOutputObject as _LightingOutputObject
from bacpypes3.object import MultiStateValueObject as _MultiStateValueObject

from drivers.bacnet.bacpypes3_internals import chosen, stored_elements

__all__ = [
    "AnalogInputObject",
    "AnalogOutputObject",
    "BinaryOutputObject",
    "SimAccumulator",
    "SimLightingOutput",
    "SimMultiStateValue",
]


class _PlainReads:
    """bacpypes3's local objects look every property up with ``inspect.getattr_static`` (to find
    async getters) on every read, which dominates a simulated device's reply time. A stored
    value is read straight from the instance here; everything else takes the library's path."""

    def __getattribute__(self, attr: str) -> Any:
        if attr[0] != "_" and attr in stored_elements(object.__getattribute__(self, "__class__")):
            try:
                return object.__getattribute__(self, attr)
            except AttributeError:
                pass
        return super().__getattribute__(attr)


_PRIORITIES = [OptionalUnsigned(unsigned=p) for p in range(1, 17)]
_NO_PRIORITY = OptionalUnsigned(null=())


class _FastCommandable:
    """bacpypes3's ``Commandable.recalculating`` with the current-command-priority values made
    once, not on every command (each costs as much as the rest of the recalculation)."""

    def recalculating(self) -> None:
        array: Any = self.priorityArray  # type: ignore[attr-defined]
        for index in range(16):
            slot = array[index]
            if slot.null is None:
                value = chosen(slot)
                LocalObject.__setattr__(self, "currentCommandPriority", _PRIORITIES[index])
                break
        else:
            value = self.relinquishDefault  # type: ignore[attr-defined]
            LocalObject.__setattr__(self, "currentCommandPriority", _NO_PRIORITY)
        LocalObject.__setattr__(self, "presentValue", value)


class AnalogInputObject(_PlainReads, _AnalogInputObject):  # type: ignore[misc]
    pass


class AnalogOutputObject(_PlainReads, _FastCommandable, _AnalogOutputObject):  # type: ignore[misc]
    pass


class BinaryOutputObject(_PlainReads, _FastCommandable, _BinaryOutputObject):  # type: ignore[misc]
    pass


class SimLightingOutput(_PlainReads, _FastCommandable, Commandable, LocalObject, _LightingOutputObject):  # type: ignore[misc]
    """Present-value is the commanded target; tracking-value follows it through fades."""

    _cov_criteria = COVIncrementCriteria

    async def _post_init(self) -> None:
        """The definition has no notification-class property; nothing to link."""


class SimMultiStateValue(_PlainReads, _FastCommandable, Commandable, LocalObject, _MultiStateValueObject):  # type: ignore[misc]
    _cov_criteria = GenericCriteria

    async def _post_init(self) -> None:
        """No intrinsic reporting in the simulator."""


class SimAccumulator(_PlainReads, LocalObject, _AccumulatorObject):  # type: ignore[misc]
    async def _post_init(self) -> None:
        """No intrinsic reporting in the simulator."""
