"""The BACnet controller keys of config.yaml (``ControllerConfig.settings``)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

BACNET_PORT = 47808
"""The standard BACnet/IP UDP port (0xBAC0)."""
LOOPBACK_BROADCAST = f"127.255.255.255:{BACNET_PORT}"
"""Where a Who-Is reaches every simulated device on this machine."""


def split_address(address: str) -> tuple[str, int]:
    """``"10.1.2.3"`` or ``"10.1.2.3:47809"`` -> (host, port)."""
    host, _, port = address.partition(":")
    return host, int(port) if port else BACNET_PORT


class BacnetSettings(BaseModel):
    """A building's BACnet device and the terms the centre commands it on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_instance: int = Field(ge=0, le=4_194_302)
    address: str = Field(description="IPv4 address of the device, optionally with :port (default 47808)")
    owner: str | None = Field(default=None, description="the building's owner, shown with its overrides")
    priority: int = Field(
        default=10, ge=1, le=16, description="the centre's command priority, agreed with the owner"
    )
    priority_names: dict[int, str] = Field(
        default={1: "manual life safety", 2: "automatic life safety", 5: "critical equipment control",
                 8: "owner's manual operator", 16: "building schedule"},
        description="who uses the other priorities of this building, for operators",
    )
    cov: bool = Field(default=True, description="subscribe to change of value where the device accepts it")
    cov_lifetime_s: int = Field(default=300, ge=2, le=86_400)
    cov_poll_s: float = Field(
        default=60.0, ge=1, le=3600, description="full poll (power, energy, faults) while COV runs"
    )
    max_concurrent: int | None = Field(
        default=None, ge=1, le=64, description="parallel requests to this device (default: the profile's)"
    )
    local_address: str | None = Field(
        default=None,
        description="the daemon's BACnet/IP address as a.b.c.d/prefix[:port]; default: 127.0.0.1 on a "
        "free port for loopback devices, else 0.0.0.0:47808",
    )

    @field_validator("address")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        host, _, port = value.partition(":")
        try:
            ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise ValueError(f"not an IPv4 address: {host!r}") from exc
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"bad UDP port {port!r}")
        return value

    @field_validator("priority")
    @classmethod
    def _not_six(cls, value: int) -> int:
        if value == 6:
            raise ValueError("priority 6 is reserved for minimum on/off time (ASHRAE 135 clause 19.2)")
        return value

    @property
    def host(self) -> str:
        return split_address(self.address)[0]

    @property
    def port(self) -> int:
        return split_address(self.address)[1]

    def who(self, priority: int) -> str:
        name = self.priority_names.get(priority)
        if priority == 8 and self.owner:
            name = f"{self.owner}: {name or 'manual operator'}"
        return f"priority {priority}" + (f" ({name})" if name else "")
