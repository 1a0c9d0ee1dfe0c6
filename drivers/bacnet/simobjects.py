"""Local BACnet object classes the simulator needs beyond what bacpypes3 gives.

bacpypes3 0.0.110 has Lighting Output only as a definition and a Multi-state Value without a
priority array; a real building controller commands both through a 16-level priority array, so
these classes add bacpypes3's own ``Commandable`` behaviour to them. Range checks are the
simulator's (sim_device.SimBuilding.write), made before anything is stored.
"""

from __future__ import annotations

from bacpypes3.local.analog import AnalogInputObject, AnalogOutputObject
from bacpypes3.local.binary import BinaryOutputObject
from bacpypes3.local.cmd import Commandable
from bacpypes3.local.cov import COVIncrementCriteria, GenericCriteria
from bacpypes3.local.object import Object as LocalObject
from bacpypes3.object import AccumulatorObject as _AccumulatorObject
from bacpypes3.object import LightingOutputObject as _LightingOutputObject
from bacpypes3.object import MultiStateValueObject as _MultiStateValueObject

__all__ = [
    "AnalogInputObject",
    "AnalogOutputObject",
    "BinaryOutputObject",
    "SimAccumulator",
    "SimLightingOutput",
    "SimMultiStateValue",
]


class SimLightingOutput(Commandable, LocalObject, _LightingOutputObject):  # type: ignore[misc]
    """Present-value is the commanded target; tracking-value follows it through fades."""

    _cov_criteria = COVIncrementCriteria

    async def _post_init(self) -> None:
        """The definition has no notification-class property; nothing to link."""


class SimMultiStateValue(Commandable, LocalObject, _MultiStateValueObject):  # type: ignore[misc]
    _cov_criteria = GenericCriteria

    async def _post_init(self) -> None:
        """No intrinsic reporting in the simulator."""


class SimAccumulator(LocalObject, _AccumulatorObject):  # type: ignore[misc]
    async def _post_init(self) -> None:
        """No intrinsic reporting in the simulator."""
