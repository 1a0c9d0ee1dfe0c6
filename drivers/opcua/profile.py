"""PLC profiles: where a vendor's program keeps its zones, as data (``profiles/*.yaml``).

Everything is addressed by namespace URI and browse names, never by numeric node ids: those
change whenever the PLC program is rebuilt, so the driver resolves them after each connect.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from ruamel.yaml import YAML

from lightctl.model.values import FaultKind

PROFILE_DIR = Path(__file__).parent / "profiles"
BrowseName = str
VariantTypeName = Literal["Boolean", "Byte", "UInt16", "UInt32", "Int32", "Float", "Double"]
ZoneKey = Literal["on", "level", "fade_s", "rgb", "cct", "output", "power_w", "faults"]
PlcKey = Literal["power_w", "energy_kwh", "scene", "faults", "voltage_v"]
WRITABLE_ZONE_KEYS: frozenset[str] = frozenset({"on", "level", "fade_s", "rgb", "cct"})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariableSpec(_Frozen):
    name: BrowseName = Field(min_length=1)
    type: VariantTypeName


class SceneSpec(_Frozen):
    """A lighting scene stored in the PLC, the same for every zone."""

    on: bool
    level: float = Field(ge=0, le=100)


class MethodSpec(_Frozen):
    name: BrowseName
    """Browse name of the method, a child of the root object."""
    argument_type: VariantTypeName = "UInt16"
    scenes: dict[int, SceneSpec] = Field(min_length=1)


class Profile(_Frozen):
    name: str
    description: str = ""
    namespace_uri: str = Field(min_length=1)
    root: list[BrowseName] = Field(min_length=1)
    """Browse path from the Objects folder to the PLC's lighting object."""
    zones: BrowseName
    """Folder under the root that holds one object per zone; a channel's ``point`` is its browse name."""
    zone_variables: dict[ZoneKey, VariableSpec]
    plc_variables: dict[PlcKey, VariableSpec] = {}
    fault_bits: dict[int, FaultKind] = {}
    recall_scene: MethodSpec | None = None

    def zone_path(self, point: str, key: ZoneKey) -> list[BrowseName]:
        return [*self.root, self.zones, point, self.zone_variables[key].name]

    def plc_path(self, key: PlcKey) -> list[BrowseName]:
        return [*self.root, self.plc_variables[key].name]

    def method_path(self) -> list[BrowseName]:
        assert self.recall_scene is not None
        return [*self.root, self.recall_scene.name]

    def decode_faults(self, bits: int) -> frozenset[FaultKind]:
        return frozenset(kind for bit, kind in self.fault_bits.items() if bits >> bit & 1)

    def encode_faults(self, kinds: frozenset[FaultKind] | set[FaultKind]) -> int:
        return sum(1 << bit for bit, kind in self.fault_bits.items() if kind in kinds)

    def scene_for(self, on: bool, level: float) -> int | None:
        """The stored scene whose every zone has this state, if the PLC has one."""
        if self.recall_scene is None:
            return None
        for number, scene in sorted(self.recall_scene.scenes.items()):
            if scene.on == on and (not on or abs(scene.level - level) < 1e-6):
                return number
        return None


class UnknownProfile(LookupError):
    pass


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


@cache
def load_profile(name: str) -> Profile:
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UnknownProfile(f"unknown OPC UA profile {name!r} (known: {', '.join(profile_names())})")
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return Profile.model_validate(data)
