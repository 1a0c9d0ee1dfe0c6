"""Device profiles: which BACnet objects a vendor's building controller exposes, as data.

A profile names the object type that a channel's ``point`` means when it is a bare number, the
fixed objects (power, energy, the building's own scene number) and what the device can do
(ReadPropertyMultiple, WritePropertyMultiple, COV, lighting-command fades, its APDU size and
request limits).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ruamel.yaml import YAML

PROFILE_DIR = Path(__file__).with_name("profiles")

ObjectKind = Literal[
    "lighting-output", "binary-output", "analog-output", "multi-state-value", "analog-input", "accumulator"
]
CHANNEL_KINDS: frozenset[str] = frozenset(
    {"lighting-output", "binary-output", "analog-output", "multi-state-value"}
)
_POINT = re.compile(r"^(?P<kind>[a-z-]+)[:,](?P<instance>\d+)$")


class ObjectRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ObjectKind
    instance: int = Field(ge=0, le=4_194_302)

    def __str__(self) -> str:
        return f"{self.kind},{self.instance}"

    @classmethod
    def parse(cls, text: str) -> ObjectRef:
        match = _POINT.match(text)
        if not match:
            raise ValueError(f"not an object reference 'type:instance': {text!r}")
        return cls(kind=match["kind"], instance=int(match["instance"]))  # type: ignore[arg-type]


class SceneStep(BaseModel):
    """Levels at or above ``min_level`` select the building's scene ``state`` (1-based)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_level: float = Field(ge=0, le=100)
    state: int = Field(ge=1)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    vendor_name: str
    model_name: str
    vendor_id: int = Field(default=999, ge=0, le=65535)
    max_apdu: Literal[50, 128, 206, 480, 1024, 1476] = 1476
    read_property_multiple: bool = Field(
        default=True, description="ReadPropertyMultiple (optional in BACnet: small and old controllers lack it)"
    )
    write_property_multiple: bool
    cov: bool
    fade: bool = Field(description="lighting-output accepts lighting-command fade-to")
    current_command_priority: bool = Field(
        description="objects have current-command-priority (BACnet rev 17+): a read-back needs one "
        "element of the priority array instead of all sixteen"
    )
    max_concurrent: int = Field(ge=1, le=64, description="requests the device serves at once")
    rpm_properties: int = Field(
        default=32, ge=1, le=500, description="properties per ReadPropertyMultiple the driver starts with"
    )
    channel_object: Literal["lighting-output", "binary-output", "analog-output", "multi-state-value"]
    power: ObjectRef | None = None
    power_scale_w: float = Field(default=1.0, gt=0, description="watts per unit of the power object")
    energy: ObjectRef | None = None
    energy_scale_kwh: float = Field(default=1.0, gt=0, description="kWh per unit of the energy object")
    scene_states: list[str] = Field(
        default=[], description="state texts of multi-state-value channels (the building's own scenes)"
    )
    scene_steps: list[SceneStep] = Field(
        default=[], description="how a level selects a scene; off is always state 1"
    )

    @model_validator(mode="after")
    def _check(self) -> Profile:
        if self.power is not None and self.power.kind not in ("analog-input", "accumulator"):
            raise ValueError("power must be an analog-input")
        if self.energy is not None and self.energy.kind not in ("analog-input", "accumulator"):
            raise ValueError("energy must be an analog-input or an accumulator")
        if self.scene_steps and not self.scene_states:
            raise ValueError("scene_steps need scene_states")
        return self

    def scene_state(self, on: bool, level: float) -> int:
        """The scene number a multi-state-value channel is commanded to for this state."""
        if not on or level <= 0:
            return 1
        chosen = 1
        for step in sorted(self.scene_steps, key=lambda s: s.min_level):
            if level >= step.min_level:
                chosen = step.state
        return chosen

    def scene_level(self, state: int) -> float:
        """The level a scene number stands for (inverse of scene_state, for read-back)."""
        levels = [step.min_level for step in self.scene_steps if step.state == state]
        return max(levels) if levels else 0.0

    def point_object(self, point: int | str) -> ObjectRef:
        """A channel's object: a bare number is an instance of ``channel_object``."""
        if isinstance(point, int):
            return ObjectRef(kind=self.channel_object, instance=point)
        if point.isdigit():
            return ObjectRef(kind=self.channel_object, instance=int(point))
        return ObjectRef.parse(point)


@cache
def load_profile(name: str) -> Profile:
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(name)
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return Profile.model_validate(data)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
