"""Cabinet controller profiles: a vendor's register map, loaded from ``profiles/*.yaml``.

A profile is data. The driver, the simulator and the floor client all derive their addresses from
it, so a new vendor is a new YAML file. Loading refuses a profile whose ranges overlap within one
table, and one whose status block does not fit one FC04 read (the read-back is one request).
"""

from __future__ import annotations

from functools import cache, cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

PROFILE_DIR = Path(__file__).with_name("profiles")
MAX_READ_REGISTERS = 125
Address = int


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scaled(_Frozen):
    """A number in input registers: ``value = raw * scale``; 32-bit values use the profile's word order."""

    address: Address = Field(ge=0, le=65535)
    width: Literal[16, 32] = 16
    scale: float = Field(default=1.0, gt=0)

    @property
    def registers(self) -> int:
        return self.width // 16


class Coils(_Frozen):
    contactor: Address = Field(ge=0, le=65535, description="coil of circuit 1; circuit n at +n-1")


class DiscreteInputs(_Frozen):
    feedback: Address = Field(ge=0, le=65535)
    trip: Address = Field(ge=0, le=65535)
    door: Address = Field(ge=0, le=65535)


class HoldingRegisters(_Frozen):
    """Circuit n's level setpoint is at ``level + (n - 1) * stride``, its fade time likewise."""

    level: Address = Field(ge=0, le=65535, description="level setpoint of circuit 1")
    fade: Address | None = Field(default=None, ge=0, le=65535, description="fade time of circuit 1")
    stride: int = Field(default=1, ge=1, le=16, description="registers from one circuit to the next")
    fade_scale: float = Field(default=0.1, gt=0, description="seconds per count of the fade register")

    def level_of(self, circuit: int) -> int:
        return self.level + (circuit - 1) * self.stride

    def fade_of(self, circuit: int) -> int | None:
        return None if self.fade is None else self.fade + (circuit - 1) * self.stride


class InputRegisters(_Frozen):
    """The status block: everything a read-back or a poll needs, read with one FC04."""

    feedback_bits: Address = Field(ge=0, le=65535)
    alarm_bits: Address = Field(ge=0, le=65535)
    trip_bits: Address = Field(ge=0, le=65535)
    setpoint: Address | None = Field(default=None, ge=0, le=65535)
    output_level: Address | None = Field(default=None, ge=0, le=65535)
    voltage: Scaled
    current: Scaled
    power: Scaled
    energy: Scaled
    circuit_power: Scaled


AlarmName = Literal["door", "phase_loss", "over_voltage", "under_voltage", "cable_theft", "leakage", "over_current"]


class Profile(_Frozen):
    id: str
    vendor: str
    model: str
    circuits: int = Field(ge=1, le=16, description="at most 16: one status word holds the feedback bits")
    dimmable: list[int] = []
    word_order: Literal["big", "little"]
    level_max: int = Field(default=1000, ge=1, le=65535)
    coils: Coils
    discrete_inputs: DiscreteInputs
    holding_registers: HoldingRegisters | None = None
    input_registers: InputRegisters
    alarm_bits: dict[AlarmName, int]

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        bad = [c for c in self.dimmable if not 1 <= c <= self.circuits]
        if bad:
            raise ValueError(f"dimmable circuits {bad} outside 1..{self.circuits}")
        if self.dimmable and self.holding_registers is None:
            raise ValueError("dimmable circuits need holding_registers.level")
        if self.dimmable and self.input_registers.setpoint is None:
            raise ValueError("dimmable circuits need input_registers.setpoint (the read-back)")
        bits = list(self.alarm_bits.values())
        if len(set(bits)) != len(bits) or not all(0 <= b <= 15 for b in bits):
            raise ValueError("alarm_bits must be distinct bit numbers 0..15")
        for table, fields in self.addresses().items():
            for i, (name_a, set_a) in enumerate(fields):
                for name_b, set_b in fields[i + 1 :]:
                    if shared := set_a & set_b:
                        raise ValueError(
                            f"overlapping {table}: {name_a} and {name_b} both use address {min(shared)}"
                        )
                if max(set_a) > 65535:
                    raise ValueError(f"{table}: {name_a} runs past address 65535")
        start, count = self.status_block()
        if count > MAX_READ_REGISTERS:
            raise ValueError(
                f"input_registers span {start}..{start + count - 1} ({count} registers): "
                f"more than one FC04 read ({MAX_READ_REGISTERS})"
            )
        return self

    @cached_property
    def _addresses(self) -> dict[str, list[tuple[str, set[int]]]]:
        """Per table, the addresses each declared field uses (for the overlap check)."""
        n = self.circuits
        di, ir = self.discrete_inputs, self.input_registers

        def run(first: int, count: int) -> set[int]:
            return set(range(first, first + count))

        out: dict[str, list[tuple[str, set[int]]]] = {
            "coils": [("contactor", run(self.coils.contactor, n))],
            "discrete_inputs": [("feedback", run(di.feedback, n)), ("trip", run(di.trip, n)), ("door", {di.door})],
            "holding_registers": [],
            "input_registers": [],
        }
        if (hr := self.holding_registers) is not None and self.dimmable:
            out["holding_registers"].append(("level", {hr.level_of(c) for c in self.dimmable}))
            if hr.fade is not None:
                out["holding_registers"].append(("fade", {hr.fade + (c - 1) * hr.stride for c in self.dimmable}))
        inputs = out["input_registers"]
        for name in ("feedback_bits", "alarm_bits", "trip_bits"):
            inputs.append((name, {getattr(ir, name)}))
        for name in ("setpoint", "output_level"):
            if (address := getattr(ir, name)) is not None:
                inputs.append((name, run(address, n)))
        for name, count in (("voltage", 3), ("current", 3), ("power", 1), ("energy", 1), ("circuit_power", n)):
            field: Scaled = getattr(ir, name)
            inputs.append((name, run(field.address, count * field.registers)))
        return out

    def addresses(self) -> dict[str, list[tuple[str, set[int]]]]:
        """Per table, the addresses each declared field uses (for the overlap check)."""
        return self._addresses

    def status_block(self) -> tuple[int, int]:
        """(first address, count) of the one FC04 read that covers every input register."""
        return self._status_block

    @cached_property
    def _status_block(self) -> tuple[int, int]:
        used = set().union(*(addresses for _, addresses in self.addresses()["input_registers"]))
        start = min(used)
        return start, max(used) + 1 - start

    def is_dimmable(self, circuit: int) -> bool:
        return circuit in self.dimmable

    # ------------------------------------------------------------------ 32-bit values

    def join32(self, first: int, second: int) -> int:
        return (first << 16 | second) if self.word_order == "big" else (second << 16 | first)

    def split32(self, value: int) -> tuple[int, int]:
        high, low = (value >> 16) & 0xFFFF, value & 0xFFFF
        return (high, low) if self.word_order == "big" else (low, high)


class ProfileError(ValueError):
    pass


def load_profile(path: Path) -> Profile:
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise ProfileError(f"modbus profile {path.name} refused: {details}") from None
    except (OSError, ValueError, YAMLError) as exc:
        raise ProfileError(f"modbus profile {path.name} refused: {exc}") from None
    if profile.id != path.stem:
        raise ProfileError(f"modbus profile {path.name} declares id {profile.id!r}; it must be {path.stem!r}")
    return profile


@cache
def _catalogue() -> tuple[dict[str, Profile], dict[str, str]]:
    found: dict[str, Profile] = {}
    refused: dict[str, str] = {}
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        try:
            found[path.stem] = load_profile(path)
        except ProfileError as exc:
            refused[path.stem] = str(exc)
    return found, refused


def profiles() -> dict[str, Profile]:
    """Every valid profile shipped beside the driver, by id (= its file name)."""
    return _catalogue()[0]


def refused_profiles() -> dict[str, str]:
    """Profiles that failed validation, by file name, with the reason: a controller that names
    one gets that reason as its config problem instead of a traceback."""
    return _catalogue()[1]
