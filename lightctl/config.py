"""The installation's configuration: a validated, frozen model of config.yaml.

Validation runs in layers and reports every problem at once, each naming file, line and field:

1. shape and types (pydantic; unknown keys are errors, never dropped with a warning),
2. each controller's protocol-specific keys, by its driver plugin's settings model,
3. cross-checks (lightctl.config_checks): duplicate ids and endpoints, unknown profiles, tags and
   selectors, overlapping registers, coordinates far from the installation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from drivers.base import Colour
from scenes.colour import ColourError, parse_colour
from schedules.model import ScheduleConfig

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
Ident = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- inventory


class Luminaires(Frozen):
    """A batch of identical luminaires on one channel."""

    count: int = Field(ge=0, le=100_000)
    kind: Literal["street", "landscape", "decoration"]
    led: bool
    watts: float = Field(gt=0, le=5_000, description="rated watts of one luminaire")
    colour: Literal["none", "cct", "rgb"] = "none"


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, Mapping) else value


class ChannelConfig(Frozen):
    id: Ident
    name: str | None = None
    point: int | str = Field(description="the profile's address of this channel: circuit, zone, object")
    dimmable: bool = True
    luminaires: list[Luminaires] = Field(min_length=1)
    tags: list[Tag] = []

    _wrap = field_validator("luminaires", mode="before")(_as_list)

    @property
    def luminaire_count(self) -> int:
        return sum(batch.count for batch in self.luminaires)

    @property
    def rated_w(self) -> float:
        return sum(batch.count * batch.watts for batch in self.luminaires)

    @property
    def colour(self) -> Literal["none", "cct", "rgb"]:
        kinds = {batch.colour for batch in self.luminaires}
        return "rgb" if "rgb" in kinds else "cct" if "cct" in kinds else "none"


COMMON_CONTROLLER_KEYS = frozenset(
    {"id", "name", "protocol", "profile", "poll_s", "timeout_s", "tags", "channels", "settings"}
)


class ControllerConfig(Frozen):
    """A field endpoint. Keys other than the common ones are the protocol's own and end up in
    ``settings``, validated by the protocol plugin's ``settings_model``."""

    id: Ident
    name: str | None = None
    protocol: str
    profile: str
    poll_s: float = Field(default=5.0, ge=0.2, le=3600)
    timeout_s: float = Field(default=2.0, ge=0.05, le=60)
    tags: list[Tag] = []
    channels: list[ChannelConfig] = Field(min_length=1)
    settings: Any = None

    @model_validator(mode="before")
    @classmethod
    def _collect_protocol_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "settings" not in data:
            common = {k: v for k, v in data.items() if k in COMMON_CONTROLLER_KEYS}
            common["settings"] = {k: v for k, v in data.items() if k not in COMMON_CONTROLLER_KEYS}
            return common
        return data

    def channel(self, channel_id: str) -> ChannelConfig:
        for channel in self.channels:
            if channel.id == channel_id:
                return channel
        raise KeyError(f"{self.id} has no channel {channel_id!r}")


class LegacyCircuit(Frozen):
    """Luminaires on a circuit no controller reaches (a legacy time-clock cabinet). They count
    in the inventory and the intelligent-control rate, and can never be commanded."""

    id: Ident
    name: str | None = None
    switching: str = "time clock"
    luminaires: list[Luminaires] = Field(min_length=1)
    tags: list[Tag] = []

    _wrap = field_validator("luminaires", mode="before")(_as_list)


class Location(Frozen):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)

    def distance_km(self, other: Location) -> float:
        """Great-circle distance (haversine)."""
        p1, p2 = math.radians(self.lat), math.radians(other.lat)
        dp, dl = p2 - p1, math.radians(other.lon - self.lon)
        a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 6371.0 * 2 * math.asin(math.sqrt(a))


class Site(Frozen):
    id: Ident
    name: str
    name_en: str
    location: Location
    tags: list[Tag] = []
    controllers: list[ControllerConfig] = []
    legacy: list[LegacyCircuit] = []


class District(Frozen):
    id: Ident
    name: str
    name_en: str
    tags: list[Tag] = []
    sites: list[Site] = Field(min_length=1)


class EnergyFactors(Frozen):
    coal_kgce_per_kwh: float = Field(default=0.1229, gt=0, description="GB/T 2589-2020")
    co2_kg_per_kwh: float = Field(default=0.5306, gt=0, description="national grid factor, MEE 2023")


class Installation(Frozen):
    name: str
    name_en: str
    timezone: str = "Asia/Shanghai"
    location: Location
    max_site_distance_km: float = Field(default=80.0, gt=0)
    energy: EnergyFactors = EnergyFactors()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class DaemonSettings(Frozen):
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8650, ge=0, le=65535)
    sim_control_port: int = Field(default=8651, ge=0, le=65535, description="demo simulators' fault control")
    database: str = "var/lightctl.db"
    concurrency: int = Field(default=500, ge=1, le=20_000, description="controllers dispatched at once")
    deadline_s: float = Field(default=3.0, gt=0, le=120, description="per controller, apply + read-back")
    confirm_retries: int = Field(default=2, ge=0, le=10, description="read-backs before 'unconfirmed'")
    reading_retention_days: int = Field(default=90, ge=1)


# --------------------------------------------------------------------------- scenes


class SceneRuleConfig(Frozen):
    """``target`` is a selector (lightctl.selectors); later rules of a scene win. ``colour`` is
    taken by the channels whose luminaires have colour (scenes.colour). ``handback: true`` hands
    the channels back to their owner instead of setting a state (lightctl.handback)."""

    target: str
    on: bool = True
    level: float = Field(default=100.0, ge=0, le=100)
    fade_s: float = Field(default=0.0, ge=0, le=3600)
    colour: Colour | None = None
    handback: bool = Field(default=False, description="the owner's own control runs these channels")

    @model_validator(mode="after")
    def _handback_has_no_state(self) -> SceneRuleConfig:
        given = self.model_fields_set & {"on", "level", "fade_s", "colour"}
        if self.handback and given:
            raise ValueError(f"a hand-back rule sets no state; remove {', '.join(sorted(given))}")
        return self

    @field_validator("colour", mode="before")
    @classmethod
    def _parse_colour(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse_colour(value)
        except ColourError as exc:
            raise ValueError(str(exc)) from None


class SceneConfig(Frozen):
    """A scene; with ``base`` it is that scene with these rules laid over it."""

    id: Ident
    name: str | None = None
    base: str | None = None
    rules: list[SceneRuleConfig] = []

    @model_validator(mode="after")
    def _has_rules(self) -> SceneConfig:
        if not self.rules and self.base is None:
            raise ValueError("a scene needs rules, or a base scene to build on")
        return self


class CueConfig(Frozen):
    """One beat of a show: at ``at_s`` into each loop, a scene (or inline rules) on ``target``
    (default: the show's target), with ``fade_s`` replacing the rules' own fades when given."""

    at_s: float = Field(ge=0)
    scene: str | None = None
    rules: list[SceneRuleConfig] = []
    target: str | None = None
    fade_s: float | None = Field(default=None, ge=0, le=600)

    @model_validator(mode="after")
    def _scene_or_rules(self) -> CueConfig:
        if (self.scene is None) == (not self.rules):
            raise ValueError("a cue needs either a scene or rules, not both")
        return self


class ShowConfig(Frozen):
    """A light show: cues on a timeline of ``duration_s``, played ``loops`` times; then the
    channels return to the scheduled scene (``end: schedule``) or keep the last cue (``hold``)."""

    id: Ident
    name: str | None = None
    target: str = "*"
    duration_s: float = Field(gt=0, le=6 * 3600)
    loops: int = Field(default=1, ge=1, le=1000)
    end: Literal["schedule", "hold"] = "schedule"
    schedule_entries: list[str] = Field(
        default=[], description="started by the schedule: once a night, when one of these entries comes into force"
    )
    cues: list[CueConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _timeline(self) -> ShowConfig:
        offsets = [cue.at_s for cue in self.cues]
        if offsets != sorted(offsets):
            raise ValueError("cues must be in time order (at_s ascending)")
        if offsets[-1] >= self.duration_s:
            raise ValueError(f"the last cue (at {offsets[-1]:g} s) must come before the end of the show ({self.duration_s:g} s)")
        return self


BUILTIN_SCENES: tuple[SceneConfig, ...] = (
    SceneConfig(id="all-on", name="全部开灯 all on", rules=[SceneRuleConfig(target="*", on=True, level=100)]),
    SceneConfig(id="all-off", name="全部关灯 all off", rules=[SceneRuleConfig(target="*", on=False, level=0)]),
    SceneConfig(id="handback", name="交还业主 hand back to the owners' control",
                rules=[SceneRuleConfig(target="*", handback=True)]),
)


# --------------------------------------------------------------------------- the whole file


class Config(Frozen):
    installation: Installation
    daemon: DaemonSettings = DaemonSettings()
    tags: list[Tag] = Field(default=[], description="every tag used anywhere must be declared here")
    districts: list[District] = Field(min_length=1)
    scenes: list[SceneConfig] = []
    shows: list[ShowConfig] = []
    schedule: ScheduleConfig = ScheduleConfig()

    def controllers(self) -> Iterable[ControllerConfig]:
        for district in self.districts:
            for site in district.sites:
                yield from site.controllers

    def all_scenes(self) -> dict[str, SceneConfig]:
        scenes = {scene.id: scene for scene in BUILTIN_SCENES}
        scenes.update({scene.id: scene for scene in self.scenes})
        return scenes

    def with_controller_settings(self, patches: Mapping[str, Mapping[str, Any]]) -> Config:
        """A copy with some controllers' protocol settings replaced (simulator endpoints)."""

        def patch(ctrl: ControllerConfig) -> ControllerConfig:
            extra = patches.get(ctrl.id)
            if not extra:
                return ctrl
            return ctrl.model_copy(update={"settings": ctrl.settings.model_copy(update=dict(extra))})

        districts = [
            d.model_copy(
                update={
                    "sites": [
                        s.model_copy(update={"controllers": [patch(c) for c in s.controllers]}) for s in d.sites
                    ]
                }
            )
            for d in self.districts
        ]
        return self.model_copy(update={"districts": districts})


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the configuration"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


Path_ = tuple[str | int, ...]


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if part == "settings":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Locator:
    """Maps a field path to a line of the YAML source (ruamel keeps line/column per key and item)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def line(self, path: Path_) -> int | None:
        node, line = self.root, None
        for part in path:
            if part == "settings":
                continue
            lc = getattr(node, "lc", None)
            try:
                if isinstance(part, int) and isinstance(node, list):
                    if lc is not None:
                        line = lc.item(part)[0] + 1
                    node = node[part]
                elif isinstance(node, Mapping) and part in node:
                    if lc is not None:
                        line = lc.key(part)[0] + 1
                    node = node[part]
                else:
                    break
            except (KeyError, IndexError, TypeError):
                break
        return line


def _describe(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key (not part of the schema; check its spelling)"
    if error["type"] == "missing":
        return "required key is missing"
    value = error.get("input")
    if error["type"] not in ("model_type", "list_type", "dict_type") and not isinstance(value, Mapping | list):
        message += f" (got {value!r})"
    return message


def _pydantic_problems(exc: ValidationError, file: str, locate: _Locator, prefix: Path_ = ()) -> list[Problem]:
    problems = []
    for error in exc.errors():
        path = prefix + tuple(error["loc"])
        problems.append(Problem(file, locate.line(path), format_path(path), _describe(error)))
    return problems


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(file, None, "", f"cannot read the file: {exc.strerror or exc}")]) from None
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError([Problem(file, line, "", f"not valid YAML: {exc.problem}")]) from None
    return config_from_data(data, source=file)


def config_from_data(data: Any, *, source: str = "<config>") -> Config:
    """Validate already-parsed data (a ruamel tree keeps line numbers; plain dicts give none)."""
    from lightctl.config_checks import cross_check, load_holiday_files, validate_protocol_settings

    locate = _Locator(data)
    if not isinstance(data, Mapping):
        raise ConfigError([Problem(source, None, "", "the file must be a mapping of sections")])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_problems(exc, source, locate)) from None
    problems: list[Problem] = []
    config = validate_protocol_settings(config, source, locate, problems)
    config = load_holiday_files(config, source, locate, problems)
    problems.extend(cross_check(config, source, locate))
    if problems:
        raise ConfigError(problems)
    return config


def controller_paths(config: Config) -> dict[str, Path_]:
    """Field path of every controller, for problems found after validation."""
    paths: dict[str, Path_] = {}
    for di, district in enumerate(config.districts):
        for si, site in enumerate(district.sites):
            for ci, ctrl in enumerate(site.controllers):
                paths[ctrl.id] = ("districts", di, "sites", si, "controllers", ci)
    return paths

