"""The ``federation:`` section: 1 + N daemons through an MQTT broker (lightctl.federation).

A **district** daemon (``role: district``) owns its district's controllers and schedule and is a
Sparkplug B edge node named after its district (``node``); the **city** daemon (``role: city``)
has no controllers of its own, is the Sparkplug primary host application (``host``), sees every
district's inventory and state, and sends the one switch to all of them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lightctl.model.installation import Frozen, Ident


class BrokerSettings(Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8883, ge=1, le=65535)
    tls: bool = Field(default=True, description="TLS to the broker (its certificate checked against ca_file)")
    ca_file: str | None = Field(default=None, description="the CA that signed the broker's certificate; none: the system's")
    username: str | None = Field(default=None, description="default: the node id (a district) or the host id (the city)")
    password_file: str | None = Field(default=None, description="a file (mode 0600) holding the broker password")
    keepalive_s: int = Field(default=10, ge=2, le=600, description="MQTT keep-alive: a silent link is dead after 1.5x this")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    reconnect_max_s: float = Field(default=5.0, ge=0.1, le=300, description="longest wait between reconnection attempts")


class FederationConfig(Frozen):
    role: Literal["district", "city"]
    group: Ident = Field(default="lightctl", description="the Sparkplug group id shared by the city and its districts")
    node: Ident | None = Field(default=None, description="district: its Sparkplug edge node id, the id of its district")
    host: Ident = Field(default="city", description="the primary host application's id (its STATE topic)")
    broker: BrokerSettings = BrokerSettings()
    districts: list[Ident] = Field(
        default=[], description="city: the districts it expects (each shown offline until its first birth)"
    )
    command_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="city: how long it waits for a district's answer to a command"
    )
    resend_after_s: float = Field(
        default=10.0, gt=0, le=600, description="district: events the city has not acknowledged are sent again after this"
    )
    outbox_retention_days: int = Field(default=7, ge=1, description="district: how long acknowledged events are kept")
    rollup_interval_s: float = Field(
        default=900.0, ge=1, le=3600,
        description="district: how often the energy roll-ups and inspections that changed go to the city (its reports)",
    )

    @property
    def username(self) -> str:
        """Who the daemon is to the broker."""
        if self.broker.username is not None:
            return self.broker.username
        return self.node if self.role == "district" and self.node is not None else self.host
