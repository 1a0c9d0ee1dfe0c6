"""The installation as configured: districts, sites, controllers, channels and their luminaires.

Frozen pydantic models: validated once by the config loader (lightctl.config), then shared by
every layer. Unknown keys are errors, never dropped.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


def as_list(value: Any) -> Any:
    """A single mapping where a list is expected becomes a list of one."""
    return [value] if isinstance(value, Mapping) else value


class ChannelConfig(Frozen):
    id: Ident
    name: str | None = None
    point: int | str = Field(description="the profile's address of this channel: circuit, zone, object")
    dimmable: bool = True
    luminaires: list[Luminaires] = Field(min_length=1)
    tags: list[Tag] = []

    _wrap = field_validator("luminaires", mode="before")(as_list)

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
RELEASE = "release"
"""The capability of handing channels back to their owner's control (BACnet buildings)."""


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
    """The protocol's own keys: a dict as read, then the protocol's validated settings model
    (lightctl.config). Drivers see it typed, through ``drivers.base.settings_of``."""
    capabilities: frozenset[str] = frozenset()
    """What the controller's driver can do beyond the contract's core (``release``: hand channels
    back to an owner). Filled by the config loader from the protocol's plugin, never read from
    the file: a ``capabilities`` key there is the protocol's, and refused by its settings model."""

    @model_validator(mode="before")
    @classmethod
    def _collect_protocol_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "settings" not in data:
            common = {k: v for k, v in data.items() if k in COMMON_CONTROLLER_KEYS}
            common["settings"] = {k: v for k, v in data.items() if k not in COMMON_CONTROLLER_KEYS}
            return common
        return data

    @property
    def releases(self) -> bool:
        return RELEASE in self.capabilities

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

    _wrap = field_validator("luminaires", mode="before")(as_list)


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
    log_format: Literal["text", "json"] = Field(default="text", description="json: one event per line, with its context")
    tls_cert: str | None = Field(default=None, description="PEM certificate (chain): the API is served over HTTPS")
    tls_key: str | None = Field(default=None, description="PEM private key of tls_cert")
    plain_http_beyond_loopback: bool = Field(
        default=False,
        description="serve plain HTTP on an api_host that is not loopback (only behind a TLS-terminating proxy)",
    )

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    def local_url(self, port: int | None = None) -> str:
        """The API's base URL as reached from this machine (an any-address binding on loopback)."""
        host = "127.0.0.1" if self.api_host in ("", "0.0.0.0", "::") else self.api_host
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.api_port if port is None else port}"

    @property
    def api_on_loopback(self) -> bool:
        """Whether ``api_host`` is reachable from this machine only."""
        if self.api_host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.api_host).is_loopback
        except ValueError:
            return False
