"""The model: pure values and frozen configuration types, shared by every layer above.

Nothing here does I/O or imports from the rest of the project (``make lint`` enforces it).
"""

from lightctl.model.config import Config
from lightctl.model.desired import (
    RELEASED,
    ActiveEntry,
    ChannelKey,
    Desired,
    DesiredState,
    Layer,
    Released,
    ScheduleSource,
    released_keys,
)
from lightctl.model.installation import (
    ChannelConfig,
    ControllerConfig,
    DaemonSettings,
    District,
    LegacyCircuit,
    Location,
    Luminaires,
    Site,
)
from lightctl.model.scenes import (
    BUILTIN_SCENES,
    HANDBACK_SCENE,
    CueConfig,
    SceneConfig,
    SceneRuleConfig,
    ShowConfig,
)
from lightctl.model.values import (
    OFF,
    ApplyResult,
    ChannelId,
    ChannelReading,
    ChannelState,
    Colour,
    ControllerReading,
    FaultKind,
    LinkState,
    PlannedOperation,
)

__all__ = [
    "BUILTIN_SCENES",
    "HANDBACK_SCENE",
    "OFF",
    "RELEASED",
    "ActiveEntry",
    "ApplyResult",
    "ChannelConfig",
    "ChannelId",
    "ChannelKey",
    "ChannelReading",
    "ChannelState",
    "Colour",
    "Config",
    "ControllerConfig",
    "ControllerReading",
    "CueConfig",
    "DaemonSettings",
    "Desired",
    "DesiredState",
    "District",
    "FaultKind",
    "Layer",
    "LegacyCircuit",
    "LinkState",
    "Location",
    "Luminaires",
    "PlannedOperation",
    "Released",
    "SceneConfig",
    "SceneRuleConfig",
    "ScheduleSource",
    "ShowConfig",
    "Site",
    "released_keys",
]
