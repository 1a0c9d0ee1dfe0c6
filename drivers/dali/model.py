"""DALI settings, gateway profiles and the line topology a controller's channels address.

A channel's ``point`` is ``"<line>/<target>"`` with target ``bc`` (broadcast), ``g<0-15>`` (a group)
or ``a<0-63>`` (a short address), e.g. ``"1/g3"``. The gear present on each line and its group
membership are declared in the controller's ``lines:`` so that configuration can be checked before
anything is sent, and so that the driver can compile frames and read back one gear per group.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from ruamel.yaml import YAML

from drivers.base import ConfigProblem, settings_of
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelId

PROFILE_DIR = Path(__file__).with_name("profiles")
Transport = Literal["daliserver", "lunatone-ws"]
MAX_GEAR = 64
MAX_GROUPS = 16
MAX_SCENES = 16


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_addresses(text: str | int | list[int]) -> frozenset[int]:
    """``"0-15,20,22-23"`` (or a list, or one number) as a set of short addresses."""
    if isinstance(text, int):
        return frozenset([text])
    if isinstance(text, list):
        return frozenset(text)
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if match is None:
            raise ValueError(f"bad address range {part!r} (use e.g. '0-15,20')")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise ValueError(f"bad address range {part!r}: {high} < {low}")
        out.update(range(low, high + 1))
    return frozenset(out)


class LineSettings(_Frozen):
    line: int = Field(ge=1, le=16)
    gear: str | list[int] = Field(description="short addresses of the gear on this line, e.g. '0-63'")
    groups: dict[int, str | list[int]] = Field(default={}, description="group number -> short addresses")
    port: int | None = Field(default=None, ge=1, le=65535, description="daliserver: this line's port")

    @field_validator("gear")
    @classmethod
    def _gear_ok(cls, value: str | list[int]) -> str | list[int]:
        parse_addresses(value)
        return value

    @field_validator("groups")
    @classmethod
    def _groups_ok(cls, value: dict[int, str | list[int]]) -> dict[int, str | list[int]]:
        for members in value.values():
            parse_addresses(members)
        return value


class DaliSettings(_Frozen):
    """The keys of a ``protocol: dali`` controller besides the common ones, e.g.::

        gateway: lunatone-ws          # or daliserver
        host: 10.21.3.11
        port: 80                      # WebSocket port; daliserver: the first line's port
        lines:
          - {line: 1, gear: "0-63", groups: {0: "0-23", 1: "24-39"}}
        scenes: {0: night-normal}     # DALI scene 0 holds config scene night-normal
        sweep_budget: 16              # gear-by-gear queries per line per poll
    """

    gateway: Transport
    host: str
    port: int | None = Field(default=None, ge=0, le=65535, description="WebSocket port or first daliserver port")
    path: str = "/"
    lines: list[LineSettings] = Field(min_length=1)
    ports: dict[int, int] = Field(default={}, description="daliserver: line -> port, over lines[].port (simulators)")
    scenes: dict[int, str] = Field(
        default={}, description="DALI scene number -> config scene id, stored in the gear by store-scenes"
    )
    sweep_gap_s: float = Field(default=0.0, ge=0, le=10, description="pause between sweep queries")
    sweep_budget: int = Field(
        default=16, ge=1, le=256, description="gear-by-gear queries per line per poll (levels, failures, scenes)"
    )


class GatewayProfile(_Frozen):
    name: str
    vendor: str
    model: str
    transports: list[Transport] = Field(min_length=1)
    lines: int = Field(ge=1, le=16)
    default_port: int = Field(ge=1, le=65535)
    notes: str = ""


@cache
def load_profiles() -> dict[str, GatewayProfile]:
    yaml = YAML(typ="safe")
    profiles = {}
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        profile = GatewayProfile.model_validate(yaml.load(path.read_text(encoding="utf-8")))
        profiles[profile.name] = profile
    return profiles


# --------------------------------------------------------------------------- points and topology


@dataclass(frozen=True, slots=True)
class Point:
    line: int
    kind: Literal["bc", "group", "short"]
    number: int = 0

    def __str__(self) -> str:
        target = {"bc": "bc", "group": f"g{self.number}", "short": f"a{self.number}"}[self.kind]
        return f"{self.line}/{target}"


_POINT = re.compile(r"^(\d+)/(?:(bc)|g(\d+)|a(\d+))$")


def parse_point(point: int | str) -> Point:
    match = _POINT.match(str(point).strip())
    if match is None:
        raise ValueError(f"bad DALI point {point!r}: use '<line>/bc', '<line>/g<group>' or '<line>/a<address>'")
    line = int(match.group(1))
    if match.group(2):
        return Point(line, "bc")
    if match.group(3) is not None:
        group = int(match.group(3))
        if group >= MAX_GROUPS:
            raise ValueError(f"group {group} in {point!r} is out of range (0-15)")
        return Point(line, "group", group)
    address = int(match.group(4))
    if address >= MAX_GEAR:
        raise ValueError(f"short address {address} in {point!r} is out of range (0-63)")
    return Point(line, "short", address)


@dataclass(frozen=True, slots=True)
class LineTopology:
    line: int
    gear: tuple[int, ...]
    groups: Mapping[int, frozenset[int]]
    channels: Mapping[ChannelId, Point]
    members: Mapping[ChannelId, tuple[int, ...]]
    """Short addresses each channel of this line reaches."""
    colour_gear: frozenset[int]
    """Gear of channels with colour ``cct``: DT8 colour control gear."""

    def gear_of(self, point: Point) -> frozenset[int]:
        if point.kind == "bc":
            return frozenset(self.gear)
        if point.kind == "group":
            return self.groups.get(point.number, frozenset())
        return frozenset([point.number]) if point.number in self.gear else frozenset()


def dali_settings(controller: ControllerConfig) -> DaliSettings:
    return settings_of(controller, DaliSettings)


def line_port(settings: DaliSettings, profile: GatewayProfile | None, line: LineSettings) -> int:
    """daliserver serves one bus per endpoint: a line's port, else consecutive from the first."""
    if line.line in settings.ports:
        return int(settings.ports[line.line])
    if line.port is not None:
        return line.port
    base = settings.port or (profile.default_port if profile else 55825)
    return base + line.line - 1


def topology(controller: ControllerConfig) -> dict[int, LineTopology]:
    """Lines of a controller with the channels on each; assumes validate_controller passed."""
    settings = dali_settings(controller)
    lines: dict[int, LineTopology] = {}
    for line in settings.lines:
        gear = tuple(sorted(parse_addresses(line.gear)))
        groups = {g: parse_addresses(m) for g, m in line.groups.items()}
        channels: dict[ChannelId, Point] = {}
        members: dict[ChannelId, tuple[int, ...]] = {}
        colour: set[int] = set()
        partial = LineTopology(line.line, gear, groups, {}, {}, frozenset())
        for channel in controller.channels:
            point = parse_point(channel.point)
            if point.line != line.line:
                continue
            channels[channel.id] = point
            members[channel.id] = tuple(sorted(partial.gear_of(point)))
            if channel.colour == "cct":
                colour.update(members[channel.id])
        lines[line.line] = LineTopology(line.line, gear, groups, channels, members, frozenset(colour))
    return lines


def validate(controller: ControllerConfig) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    settings = dali_settings(controller)
    profile = load_profiles().get(controller.profile)
    if profile is None:
        known = ", ".join(sorted(load_profiles()))
        problems.append(ConfigProblem(("profile",), f"unknown DALI gateway profile {controller.profile!r} (known: {known})"))
    elif settings.gateway not in profile.transports:
        problems.append(
            ConfigProblem(("gateway",), f"{profile.name} does not speak {settings.gateway!r} (it speaks {', '.join(profile.transports)})")
        )
    seen_lines: set[int] = set()
    declared: dict[int, tuple[frozenset[int], dict[int, frozenset[int]]]] = {}
    for li, line in enumerate(settings.lines):
        path: tuple[str | int, ...] = ("lines", li)
        if line.line in seen_lines:
            problems.append(ConfigProblem((*path, "line"), f"line {line.line} is declared twice"))
        seen_lines.add(line.line)
        if profile is not None and line.line > profile.lines:
            problems.append(ConfigProblem((*path, "line"), f"{profile.name} has {profile.lines} line(s), not {line.line}"))
        gear = parse_addresses(line.gear)
        if not gear or max(gear) >= MAX_GEAR:
            problems.append(ConfigProblem((*path, "gear"), "a line has 1 to 64 gear with short addresses 0-63"))
        groups: dict[int, frozenset[int]] = {}
        for group, members_text in line.groups.items():
            members = parse_addresses(members_text)
            if not 0 <= group < MAX_GROUPS:
                problems.append(ConfigProblem((*path, "groups", group), f"group {group} is out of range (0-15)"))
            missing = sorted(members - gear)
            if missing:
                problems.append(ConfigProblem((*path, "groups", group), f"group {group} names gear not on the line: {missing}"))
            groups[group] = members
        declared[line.line] = (gear, groups)
    for number in settings.ports:
        if number not in declared:
            problems.append(ConfigProblem(("ports", number), f"port given for undeclared line {number}"))
    if settings.ports and settings.gateway != "daliserver":
        problems.append(ConfigProblem(("ports",), "per-line ports are for daliserver gateways only"))
    for number in settings.scenes:
        if not 0 <= number < MAX_SCENES:
            problems.append(ConfigProblem(("scenes", number), f"DALI scene {number} is out of range (0-15)"))
    reached: dict[int, list[tuple[str, frozenset[int]]]] = {}
    for ci, channel in enumerate(controller.channels):
        cpath: tuple[str | int, ...] = ("channels", ci, "point")
        try:
            point = parse_point(channel.point)
        except ValueError as exc:
            problems.append(ConfigProblem(cpath, str(exc)))
            continue
        if point.line not in declared:
            problems.append(ConfigProblem(cpath, f"unknown line {point.line} (declared: {sorted(declared)})"))
            continue
        gear, groups = declared[point.line]
        if point.kind == "bc":
            members = gear
        elif point.kind == "group":
            members = groups.get(point.number, frozenset())
            if not members:
                problems.append(ConfigProblem(cpath, f"group {point.number} has no gear on line {point.line}"))
        else:
            members = frozenset([point.number]) & gear
            if not members:
                problems.append(ConfigProblem(cpath, f"no gear with short address {point.number} on line {point.line}"))
        if channel.colour == "rgb":
            problems.append(ConfigProblem(("channels", ci, "luminaires"), "RGB colour over DALI is not supported (DT8 Tc only)"))
        for other, other_members in reached.get(point.line, []):
            common = members & other_members
            if common:
                problems.append(
                    ConfigProblem(cpath, f"channel {channel.id!r} overlaps channel {other!r} on gear {sorted(common)[:8]}")
                )
        reached.setdefault(point.line, []).append((channel.id, members))
    return problems
